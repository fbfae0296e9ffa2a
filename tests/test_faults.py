"""Checkpoint-write faults (checkpointing/faults.py): an unusable work_dir fails before training, a full
disk during a checkpoint is one line — clear messages, nothing completed is lost. (A NaN loss:
test_engine_faults.py.)"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line_error, tiny_recipe

from accel_slowfast.engine.training import train
from accel_slowfast.recipe.recipe import RecipeError

REPO = Path(__file__).parents[1]


def test_unwritable_or_full_work_dir_fails_before_training(tiny_root, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(RecipeError, match="is not writable"):
        train(tiny_recipe(tiny_root, tmp_path / "a_file" / "run"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "checkpoints").write_text("not a folder")
    with pytest.raises(RecipeError, match="taken/checkpoints is a file, but checkpoints are saved in a folder"):
        train(tiny_recipe(tiny_root, tmp_path / "taken", data_root="/nonexistent"))  # before any data work
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(RecipeError, match="MiB free but a checkpoint needs"):
        train(tiny_recipe(tiny_root, tmp_path / "full"))
    assert not (tmp_path / "full" / "metrics.jsonl").exists()


def _in_a_small_disk(mountpoint, megabytes, *commands):
    """Run ``commands`` one after the other in a private mount namespace where ``mountpoint`` is a
    tmpfs of ``megabytes``; the status is the first command's."""
    script = f'mount -t tmpfs -o size={megabytes}m tmpfs "$0" || exit 99; ' + "; ".join(
        [f"{commands[0]}; code=$?", *commands[1:], "exit $code"])
    return subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script, str(mountpoint)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_earlier_checkpoints(tiny_root, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = _in_a_small_disk(disk, 1, "true")
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    work_dir = disk / "run"
    train_command = shlex.join([
        sys.executable, str(REPO / "train.py"), f"--data_root={tiny_root}", f"--work_dir={work_dir}", "--clip_len=8",
        "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=4", "--num_workers=0",
        "--max_epochs=4", "--checkpoint_interval=1", "--max_keep_ckpts=0", "--log_interval=5", "--deterministic"])
    check = ("import pathlib, sys; from accel_slowfast.checkpointing.manifest import verify_checkpoint; "
             "names = sorted(p.name for p in pathlib.Path(sys.argv[1]).iterdir()); print(names); "
             "[verify_checkpoint(pathlib.Path(sys.argv[1]) / n) for n in names if n.startswith('epoch_')]; "
             "print('intact')")
    # 19 MB: room for the start-up check (two 8.5 MB checkpoints) but not for all four epochs' checkpoints
    result = _in_a_small_disk(disk, 19, train_command,
                              shlex.join([sys.executable, "-c", check, str(work_dir / "checkpoints")]))
    line = one_line_error(result, code=1)
    assert "no space left to save epoch_" in line and f"in work_dir {work_dir}" in line, line
    assert "bytes)" in line and "MB are free" in line
    assert "the last good checkpoint is" in line and "/checkpoints/epoch_" in line.split("last good")[1], line
    *_, names, intact = result.stdout.splitlines()
    assert intact == "intact", result.stdout
    assert "epoch_1" in names and ".tmp_" not in names, names
