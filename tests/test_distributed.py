"""Two CPU processes (gloo) against one: sharding, augmentation seeds, evaluation."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("dist_data_check.py")


def _run(root, out, processes):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    result = subprocess.run([*launcher, str(SCRIPT), str(root), str(out)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(Path(out).read_text())


@pytest.fixture(scope="module")
def runs(tiny_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    data = tmp / "data"
    shutil.copytree(tiny_root, data)
    (data / "MoveUp/v_MoveUp_g01_c02.avi").write_bytes(b"")  # a bad validation video
    return _run(data, tmp / "one.json", 1), _run(data, tmp / "two.json", 2)


def test_two_processes_see_disjoint_samples_that_cover_the_set(runs):
    one, two = runs
    assert two["processes"] == 2
    for epoch in two["epochs"]:
        rank0, rank1 = ([i for i, _ in rank] for rank in epoch)
        assert len(rank0) == len(rank1) == 10  # the same number of batches on every rank
        assert not set(rank0) & set(rank1) and sorted(rank0 + rank1) == list(range(20))
    assert two["epochs"][0] != two["epochs"][1]  # reshuffled each epoch


def test_augmentations_do_not_depend_on_the_process_count(runs):
    one, two = runs
    for epoch_one, epoch_two in zip(one["epochs"], two["epochs"], strict=True):
        clips_one = dict(epoch_one[0])
        clips_two = dict(pair for rank in epoch_two for pair in rank)
        assert clips_one == clips_two  # same (seed, epoch, index) -> same clip, whoever loads it


def test_evaluation_with_two_processes_equals_one(runs):
    one, two = runs
    assert two["metrics"] == one["metrics"]
    assert one["metrics"]["num_videos"] == 9 and one["metrics"]["num_failed"] == 1


def test_two_processes_with_half_batches_train_like_one_with_the_full_batch(tmp_path):
    import torch

    script = Path(__file__).with_name("dist_equivalence_check.py")
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    results = []
    for processes in (1, 2):
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        out = tmp_path / f"p{processes}.pt"
        run = subprocess.run([*launcher, str(script), str(out), "8"], env=env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        results.append(torch.load(out))
    one, two = results
    assert len(one["lrs"]) == len(two["lrs"]) == 6 and one["lrs"] == two["lrs"]  # the same LR at every iteration
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(one["state"]["4.weight"], torch.zeros_like(one["state"]["4.weight"]))
