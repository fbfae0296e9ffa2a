"""commands/test.py (``accel-slowfast test``, ``test.py``): the arguments, the reports beside the checkpoint or
in ``--out_dir``, the run's recipe as the base; any number of processes gives the same metrics."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import one_line_error

from accel_slowfast.commands import test as command
from accel_slowfast.models.builders import build_model

REPO = Path(__file__).parents[1]


def test_arguments_read_the_checkpoints_own_recipe_and_put_the_reports_beside_it(trained, tmp_path):
    recipe, checkpoint = trained
    found, out_dir, read = command.test_arguments([f"--checkpoint={checkpoint}", "--num_clips=2"])
    assert (found, out_dir) == (str(checkpoint), Path(recipe.work_dir))
    assert read.data_root == recipe.data_root and read.num_clips == 2  # the run's recipe; the command line wins


def test_a_missing_checkpoint_is_one_line_before_torch_is_imported():
    code = ("import sys\nfrom accel_slowfast.commands.cli import main\ntry:\n    main(['test', '--num_clips=2'])\n"
            "finally:\n    assert 'torch' not in sys.modules, 'torch'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "test needs --checkpoint=PATH" in one_line_error(result)


def test_test_of_a_copied_checkpoint_writes_beside_the_copy_or_into_out_dir(trained, tmp_path):
    recipe, checkpoint = trained
    copy = tmp_path / "elsewhere" / "epoch_1"
    shutil.copytree(checkpoint, copy)  # its recipe.yaml names the run it came from as work_dir
    before = sorted(Path(recipe.work_dir).iterdir())
    command.main([f"--checkpoint={copy}", "--num_clips=1", "--num_crops=1"])
    assert json.loads((copy.parent / "test_metrics.json").read_text())["checkpoint"] == str(copy)
    assert (copy.parent / "test_predictions.csv").is_file() and next(copy.parent.glob("test_*.log"))
    command.main([f"--checkpoint={copy}", f"--out_dir={tmp_path / 'results'}", "--num_clips=1", "--num_crops=1"])
    assert (tmp_path / "results" / "test_metrics.json").is_file()
    assert sorted(Path(recipe.work_dir).iterdir()) == before  # the original run's work_dir is untouched


@pytest.mark.slow
def test_test_py_with_two_processes_equals_one(tiny_root, tmp_path):
    torch.manual_seed(0)
    torch.save(build_model("slowfast_tiny", num_classes=5).state_dict(), tmp_path / "weights.pth")
    args = [f"--data_root={tiny_root}", "--clip_len=8", "--short_side=32", "--crop_size=32", "--test_crop_size=32",
            "--num_clips=2", "--batch_size=4", "--num_workers=0", f"--checkpoint={tmp_path / 'weights.pth'}"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    results = []
    for processes in (1, 2):
        work_dir = tmp_path / f"p{processes}"
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        run = subprocess.run([*launcher, str(REPO / "test.py"), *args, f"--out_dir={work_dir}"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        results.append(json.loads((work_dir / "test_metrics.json").read_text()))
    assert [result.pop("num_processes") for result in results] == [1, 2]  # what was in force, recorded
    assert results[0] == results[1] and results[0]["num_videos"] == 10 and results[0]["num_views"] == 60


@pytest.mark.slow
def test_the_summary_names_the_best_checkpoint_and_its_test_command_evaluates_that_run(tiny_root, tmp_path):
    trained = subprocess.run([sys.executable, str(REPO / "train.py"), f"--data_root={tiny_root}",
                              f"--work_dir={tmp_path / 'run'}", "--clip_len=8", "--short_side=32", "--crop_size=32",
                              "--test_crop_size=32", "--batch_size=4", "--num_workers=0", "--max_epochs=2",
                              "--num_clips=1", "--deterministic"], capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = trained.stderr[trained.stderr.index("Finished: 2 epochs, 10 iterations"):]
    assert "best top1_acc: " in summary and "last evaluation (epoch 2): top1_acc " in summary
    assert f"work_dir: {tmp_path / 'run'}" in summary
    command = summary.split("next, the multi-view test: ")[1].splitlines()[0]
    assert command.startswith("accel-slowfast test --checkpoint=") and "best_top1_acc_epoch_" in command

    # run it from elsewhere with one key changed: the run's recipe (data, crops, clip length) is the base
    checkpoint = command.split("--checkpoint=")[1]
    tested = subprocess.run([sys.executable, str(REPO / "test.py"), f"--checkpoint={checkpoint}", "--num_clips=2"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert metrics["num_videos"] == 10 and metrics["num_views"] == 10 * 2 * 3  # --num_clips=2 won over 1
    assert "test: 60/60 views, " in tested.stderr  # the progress over views: a plain line, not a terminal
    tail = tested.stderr.rstrip().splitlines()[-6:]
    assert f"top1_acc {metrics['top1_acc']:.4f}" in "\n".join(tail) and "Wrote:" in "\n".join(tail)
    written = [line.strip() for line in tail[tail.index(next(t for t in tail if t.endswith("Wrote:"))) + 1:]]
    assert len(written) == 4 and all(Path(path).is_file() for path in written)
