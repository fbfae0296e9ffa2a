"""Exact resume: a run killed with SIGKILL mid-epoch and resumed equals an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from accel_slowfast.workdir import find_resume_checkpoint

REPO = Path(__file__).parents[1]


def _args(root, work_dir, *extra):
    return [sys.executable, str(REPO / "train.py"), f"--data_root={root}", f"--work_dir={work_dir}", "--clip_len=8",
            "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=4", "--num_workers=1",
            "--max_epochs=3", "--log_interval=2", "--eval_interval=1", "--checkpoint_interval=1",
            "--checkpoint_interval_iters=2", "--max_keep_ckpts=0", "--deterministic", *extra]


def _records(work_dir):
    lines = (Path(work_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "data_time")} for line in lines]


def _run(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("kill_after", ["iter_6", "epoch_2"])
def test_sigkill_at_any_moment_then_resume_equals_an_uninterrupted_run(tiny_root, tmp_path, kill_after):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(_args(tiny_root, straight))

    process = subprocess.Popen(_args(tiny_root, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not (killed / "checkpoints" / kill_after).exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.1)  # let it run on a little: the resumed run must redo that work identically
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "checkpoints" / "epoch_3").exists()
    resumed_from = find_resume_checkpoint(killed)
    assert resumed_from is not None and not resumed_from.name.startswith(".tmp")

    _run(_args(tiny_root, killed, "--resume_from=auto"))
    assert _records(killed) == _records(straight)
    ours = load_file(str(killed / "checkpoints" / "epoch_3" / "model.safetensors"))
    reference = load_file(str(straight / "checkpoints" / "epoch_3" / "model.safetensors"))
    assert ours.keys() == reference.keys()
    for key in ours:
        assert torch.equal(ours[key], reference[key]), key
