"""One run per work_dir (lock.py): a second run is refused naming the first, a crashed run's lock is
taken over, a fresh run keeps out of another run's checkpoints, and max_keep_ckpts removes only the
checkpoints of the run that wrote them (which ones: test_manifest.py)."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import one_line_error, run_command
from filelock import MarkerSoftFileLock

from accel_slowfast.checkpointing.lock import LOCK_FILE, WorkDirBusy, acquire, hold_work_dir
from accel_slowfast.checkpointing.manifest import sorted_checkpoints, write_manifest
from accel_slowfast.recipe.recipe import Recipe

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class _OneProcess:
    is_main_process, num_processes = True, 1


def _listing(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def test_a_held_work_dir_is_refused_in_one_line_naming_the_holder_and_nothing_is_touched(tiny_root, tmp_path):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    (work_dir / "metrics.jsonl").write_text("{}\n")
    lock = acquire(work_dir)
    try:
        before = _listing(work_dir)
        line = one_line_error(run_command("train.py", tiny_root, work_dir))
        host = MarkerSoftFileLock(str(work_dir / LOCK_FILE)).owner.hostname
        assert f"work_dir {work_dir} is in use by the run of pid {os.getpid()} on host {host}" in line, line
        assert _listing(work_dir) == before
    finally:
        lock.release()
    assert not (work_dir / LOCK_FILE).exists()


def test_the_lock_of_a_crashed_run_is_taken_over(tmp_path, caplog):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    crash = ("import os, pathlib, signal; from accel_slowfast.checkpointing.lock import acquire; "
             f"lock = acquire(pathlib.Path({str(work_dir)!r})); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", crash], env=ENV).returncode == -signal.SIGKILL
    assert (work_dir / LOCK_FILE).exists()
    with caplog.at_level(logging.WARNING, "accel_slowfast"), \
            hold_work_dir(Recipe(work_dir=str(work_dir)), _OneProcess()) as run_id:
        assert run_id and MarkerSoftFileLock(str(work_dir / LOCK_FILE)).owner.pid == os.getpid()
        with pytest.raises(WorkDirBusy, match=f"in use by the run of pid {os.getpid()}"):
            acquire(work_dir)
    assert "took over the lock of pid" in caplog.text and "ended without releasing it" in caplog.text
    assert not (work_dir / LOCK_FILE).exists()  # released on leaving, an error or not


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    work_dir = tmp_path / "run"
    with pytest.raises(RuntimeError), hold_work_dir(Recipe(work_dir=str(work_dir)), _OneProcess()):
        raise RuntimeError("a failed run")
    acquire(work_dir).release()


@pytest.mark.slow
def test_two_runs_started_together_one_trains_the_other_is_refused(tiny_root, tmp_path):
    work_dir = tmp_path / "run"
    args = [sys.executable, str(REPO / "train.py"), f"--data_root={tiny_root}", f"--work_dir={work_dir}",
            "--clip_len=8", "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=4",
            "--num_workers=1", "--max_epochs=100", "--checkpoint_interval_iters=2"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while not (work_dir / LOCK_FILE).exists():
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.05)
    line = one_line_error(subprocess.run(args, capture_output=True, text=True, timeout=300, env=ENV))
    assert f"in use by the run of pid {first.pid} on host" in line, line
    first.send_signal(signal.SIGINT)  # it stops after a checkpoint, and lets the work_dir go
    assert first.wait(timeout=300) == 130, first.stderr.read()[-3000:]
    metas = [json.loads((p / "meta.json").read_text()) for p in sorted_checkpoints(work_dir / "checkpoints")]
    assert len({meta["run_id"] for meta in metas}) == 1  # every checkpoint is the first run's
    assert not (work_dir / LOCK_FILE).exists()


@pytest.mark.slow
def test_two_processes_take_the_lock_once_and_a_held_work_dir_stops_both(tiny_root, tmp_path):
    work_dir = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                str(REPO / "train.py"), f"--data_root={tiny_root}", f"--work_dir={work_dir}", "--clip_len=8",
                "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=2", "--num_workers=0",
                "--max_epochs=1"]
    env = {**ENV, "ACCELERATE_USE_CPU": "1"}
    result = subprocess.run(torchrun, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (work_dir / LOCK_FILE).exists()
    lock = acquire(work_dir)
    try:
        result = subprocess.run([*torchrun, "--resume_from=auto", "--max_epochs=2"], capture_output=True, text=True,
                                timeout=120, env=env)  # a deadlocked rank would run into the timeout
    finally:
        lock.release()
    # each rank stops with the line (torchrun then reports the failed ranks in its own words)
    assert result.returncode != 0 and result.stderr.count(f"in use by the run of pid {os.getpid()}") == 2, \
        result.stderr[-3000:]


@pytest.mark.slow
def test_a_fresh_run_into_another_runs_work_dir_is_refused_unless_overwrite_moves_it_aside(tiny_root, tmp_path):
    work_dir = tmp_path / "run"
    result = run_command("train.py", tiny_root, work_dir, max_epochs=3)  # a checkpoint every epoch, all kept
    assert result.returncode == 0, result.stderr[-3000:]
    before = _listing(work_dir)
    line = one_line_error(run_command("train.py", tiny_root, work_dir, max_epochs=1))
    assert f"work_dir {work_dir} holds the checkpoints of an earlier run (best_top1_acc_epoch_" in line, line
    assert "--resume_from=auto" in line and "--overwrite" in line
    assert _listing(work_dir) == before

    result = run_command("train.py", tiny_root, work_dir, max_epochs=1, max_keep_ckpts=1, overwrite=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (aside,) = work_dir.glob("checkpoints_*")
    assert {"epoch_1", "epoch_2", "epoch_3"} <= {p.name for p in aside.iterdir()}
    assert (work_dir / "checkpoints" / "epoch_1" / "meta.json").is_file()  # not deleted for the old run's

    line = one_line_error(run_command("train.py", tiny_root, work_dir, max_epochs=1, resume_from="auto"))
    assert "checkpoints/epoch_1 has trained 1 epochs and max_epochs is 1: nothing is left to train" in line, line
    result = run_command("train.py", tiny_root, work_dir, max_epochs=2, max_keep_ckpts=1, resume_from="auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resumed from {work_dir}/checkpoints/epoch_1" in result.stderr
    assert sorted(p.name for p in (work_dir / "checkpoints").glob("epoch_*")) == ["epoch_2"]


@pytest.mark.slow
def test_an_old_checkpoint_without_its_recipe_resumed_with_another_optimizer_is_one_line(tiny_root, trained, tmp_path):
    _, epoch_1 = trained
    old = tmp_path / "old" / "checkpoints" / "epoch_1"
    shutil.copytree(epoch_1, old)
    (old / "recipe.yaml").unlink()
    meta = json.loads((old / "meta.json").read_text())
    write_manifest(old, {key: value for key, value in meta.items() if key not in ("files", "run_id")})
    line = one_line_error(run_command("train.py", tiny_root, tmp_path / "old", resume_from=old, optimizer="sgd",
                                      data_root="/nonexistent"))  # before any data work
    assert f"resume_from: {old} was trained with optimizer='adamw'" in line and "--optimizer=adamw" in line, line
