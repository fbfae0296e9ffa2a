"""Two CPU processes (gloo) against one: sharding, augmentation seeds, evaluation."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses that train or benchmark: tens of seconds

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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_probe_once_each_into_their_own_cache_and_train_in_step(tiny_root, tmp_path):
    """Two torchrun "nodes" of 2 processes on this machine, each node with its own cache folder."""
    import datasets

    repo, port = Path(__file__).parents[1], _free_port()
    recipe = [f"--{key}={value}" for key, value in dict(
        dataset="ucf101", data_root=tiny_root, annotation_dir=tiny_root / "ucfTrainTestlist", work_dir=tmp_path / "run",
        clip_len=8, frame_interval=2, short_side=32, crop_size=32, test_crop_size=32, batch_size=2, num_workers=0,
        max_epochs=2, log_interval=1, eval_interval=2, checkpoint_interval=1, max_keep_ckpts=0).items()]
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={port}", f"--log-dir={tmp_path / f'logs{rank}'}", "--redirects=3",
         "train.py", *recipe], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
             "ACCEL_SLOWFAST_CACHE": str(tmp_path / f"cache{rank}")}) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(out[-2000:] for out in outputs)
    for rank in (0, 1):
        for local_rank, bars in ((0, 1), (1, 0)):  # the node's first process probes each split; the other reads
            (log,) = (tmp_path / f"logs{rank}").glob(f"*/attempt_0/{local_rank}/stderr.log")
            lines = log.read_text().splitlines()
            for split in ("trainlist01.txt", "testlist01.txt"):  # a log, not a terminal: one line when probing ends
                assert sum(line.startswith(f"probing {split}: ") for line in lines) == bars, (rank, local_rank)
        caches = sorted((tmp_path / f"cache{rank}" / "index").iterdir())
        assert len(caches) == 2  # train and test, nothing half-written beside them
        assert sorted(len(datasets.load_from_disk(str(cache))) for cache in caches) == [10, 20]
        assert all(not any(datasets.load_from_disk(str(cache))["error"]) for cache in caches)
    # every process of both nodes saved its state with each epoch's checkpoint: all ran the same iterations
    for epoch in (1, 2):
        saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints" / f"epoch_{epoch}").glob("random_states_*"))
        assert saved == [f"random_states_{rank}.pkl" for rank in range(4)]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [2]


def test_two_processes_train_a_multigrid_run_in_step(tiny_root, tmp_path):
    """Both processes run every step of each epoch (the per-step shapes: test_multigrid_sampler.py)."""
    recipe = [f"--{key}={value}" for key, value in dict(
        dataset="ucf101", data_root=tiny_root, annotation_dir=tiny_root / "ucfTrainTestlist", work_dir=tmp_path / "run",
        clip_len=8, short_side=32, crop_size=32, test_crop_size=32, batch_size=1, num_workers=0, max_epochs=2,
        multigrid_short_cycle=True, precise_bn_batches=2, log_interval=1, eval_interval=2,
        checkpoint_interval=2).items()]
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(Path(__file__).parents[1] / "train.py"), *recipe], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # 20 videos on 2 processes: steps of 2 x 4 clips at 16², 2 x 2 at 23², 2 x 1 at 32², then 6 left: too few
    assert [sum(r["epoch"] == e for r in records if r["mode"] == "train") for e in (1, 2)] == [3, 3]
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "epoch_2").glob("random_states_*"))
    assert saved == ["random_states_0.pkl", "random_states_1.pkl"]
