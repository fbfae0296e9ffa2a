"""Resuming (resume.py): a run killed at any moment and resumed equals an uninterrupted one; the
checkpoint is verified (a damaged newest one is passed over) and its recipe compared with this
one's before any data work."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from conftest import one_line_error, run_command, tiny_recipe
from safetensors.torch import load_file

from accel_slowfast.checkpointing.manifest import find_resume_checkpoint, verify_checkpoint, write_manifest
from accel_slowfast.checkpointing.resume import plan_resume
from accel_slowfast.engine.hooks import CheckpointHook
from accel_slowfast.engine.training import train
from accel_slowfast.errors import CheckpointError
from accel_slowfast.recipe.recipe import Recipe

LOGGER = logging.getLogger("accel_slowfast")

REPO = Path(__file__).parents[1]


def _args(root, work_dir, *extra):
    return [sys.executable, str(REPO / "train.py"), f"--data_root={root}", f"--work_dir={work_dir}", "--clip_len=8",
            "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=4", "--num_workers=1",
            "--max_epochs=3", "--log_interval=2", "--eval_interval=1", "--checkpoint_interval=1",
            "--checkpoint_interval_iters=2", "--max_keep_ckpts=0", "--deterministic", *extra]


def _records(work_dir):
    lines = (Path(work_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "data_time")} for line in lines]


def _weights(work_dir, epoch):
    return load_file(str(Path(work_dir) / "checkpoints" / f"epoch_{epoch}" / "model.safetensors"))


def _run(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_at_an_epoch_boundary_equals_an_uninterrupted_run(tiny_root, tmp_path, monkeypatch):
    straight = tiny_recipe(tiny_root, tmp_path / "straight", max_epochs=3, checkpoint_interval=1)
    train(straight)

    interrupted = replace(straight, work_dir=str(tmp_path / "interrupted"))
    save = CheckpointHook.after_train_epoch

    def save_then_crash(self, runner):
        save(self, runner)
        if runner.epoch + 1 == 2:
            raise KeyboardInterrupt("simulated preemption after epoch 2")

    monkeypatch.setattr(CheckpointHook, "after_train_epoch", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.undo()
    # the same seed gives the same first two epochs
    assert _records(interrupted.work_dir) == [r for r in _records(straight.work_dir) if r["epoch"] <= 2]

    runner = train(replace(interrupted, resume_from="auto"))
    assert runner.epoch == 3 and runner.iter == 15
    assert _records(interrupted.work_dir) == _records(straight.work_dir)
    ours, reference = _weights(interrupted.work_dir, 3), _weights(straight.work_dir, 3)
    assert ours.keys() == reference.keys()
    for key in ours:
        assert torch.equal(ours[key], reference[key]), key


# --- the checkpoint's recipe against this one's (resume.plan_resume), without data ---------------

def _checkpoint(tmp_path, inner_iter=3, processes=1, **recipe):
    folder = tmp_path / "checkpoints" / "iter_3"
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(Recipe(batch_size=4, **recipe).to_dict()))
    write_manifest(folder, {"epoch": 0, "inner_iter": inner_iter, "iter": 3, "num_processes": processes})
    return folder


def test_a_changed_key_that_reshapes_the_state_is_refused_naming_old_and_new(tmp_path):
    folder = _checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"num_classes=5, optimizer='adamw' but this recipe has "
                                              r"num_classes=7, optimizer='sgd'.*--load_from="):
        plan_resume(folder, Recipe(batch_size=4, num_classes=7, optimizer="sgd").to_dict(), 1, LOGGER)


LONG_CYCLE = dict(multigrid_long_cycle=True, lr_policy="step", lr_steps=[4, 8], max_epochs=12)


@pytest.mark.parametrize(("base", "changes", "processes", "named"), [
    ({}, {"batch_size": 2}, 1, "batch_size=4"),
    ({}, {"seed": 1}, 1, "seed=0"),
    ({}, {"num_repeats": 2}, 1, "num_repeats=1"),  # the same clips per batch, from half the videos
    ({}, {}, 2, "processes=1"),
    (LONG_CYCLE, {"max_epochs": 14}, 1, "max_epochs=12"),  # the long cycle's epoch shapes follow from it
    (LONG_CYCLE, {"lr_steps": [5, 8]}, 1, r"lr_steps=\[4, 8\]"),
])
def test_a_mid_epoch_data_order_change_is_refused_unless_the_next_epoch_may_start(tmp_path, caplog, base, changes,
                                                                                   processes, named):
    folder = _checkpoint(tmp_path, **base)
    recipe = {**Recipe(batch_size=4, **base).to_dict(), **changes}
    with pytest.raises(CheckpointError, match=rf"mid-epoch \(epoch 1 after 3 iterations\) with {named}"):
        plan_resume(folder, recipe, processes, LOGGER)
    with caplog.at_level(logging.WARNING, logger="accel_slowfast"):
        plan = plan_resume(folder, {**recipe, "resume_next_epoch": True}, processes, LOGGER)
    assert plan.next_epoch and "training continues at epoch 2" in caplog.text


def test_at_an_epoch_boundary_the_data_order_may_change_and_changes_are_logged(tmp_path, caplog):
    folder = _checkpoint(tmp_path, inner_iter=0)
    with caplog.at_level(logging.INFO, logger="accel_slowfast"):
        plan = plan_resume(folder, Recipe(batch_size=8, lr=0.1).to_dict(), 2, LOGGER)
    assert not plan.next_epoch and "batch_size 4 -> 8" in caplog.text and "lr 0.004 -> 0.1" in caplog.text


def test_without_the_long_cycle_max_epochs_and_lr_steps_do_not_change_the_data_order(tmp_path):
    folder = _checkpoint(tmp_path)
    assert not plan_resume(folder, Recipe(batch_size=4, max_epochs=20).to_dict(), 1, LOGGER).next_epoch


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory):
    """A 2-epoch run with epoch_1, epoch_2 and mid-epoch iter_3, iter_6, iter_9 checkpoints."""
    work_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_command("train.py", tiny_root, work_dir, checkpoint_interval_iters=3)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_auto_resume_passes_over_a_damaged_newest_checkpoint(tiny_root, run_copy):
    _truncate(run_copy / "checkpoints" / "epoch_2" / "model.safetensors")
    result = run_command("train.py", tiny_root, run_copy, resume_from="auto", max_epochs=3)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping checkpoint" in result.stderr and "epoch_2 is damaged" in result.stderr
    assert f"Resumed from {run_copy}/checkpoints/iter_9" in result.stderr
    assert verify_checkpoint(run_copy / "checkpoints" / "epoch_3")["epoch"] == 3


@pytest.mark.slow
def test_a_damaged_explicit_checkpoint_is_one_line_for_train_test_and_predict(tiny_root, run_copy):
    damaged = run_copy / "checkpoints" / "epoch_2"
    _truncate(damaged / "optimizer.bin")
    line = one_line_error(run_command("train.py", tiny_root, run_copy, resume_from=damaged,
                                      data_root="/nonexistent"))  # reported before any data work
    assert "optimizer.bin has" in line and "truncated" in line
    line = one_line_error(run_command("test.py", tiny_root, run_copy, f"--checkpoint={damaged}"))
    assert "optimizer.bin has" in line
    best = next((run_copy / "checkpoints").glob("best_*.pth"))
    _truncate(best)
    video = next(tiny_root.glob("MoveUp/*.avi"))
    predict = subprocess.run([sys.executable, "-m", "accel_slowfast", "predict", str(video), f"--checkpoint={best}"],
                             capture_output=True, text=True, timeout=300)
    line = one_line_error(predict)
    assert best.name in line and "damaged, truncated or not a checkpoint" in line


@pytest.mark.slow
@pytest.mark.parametrize(("key", "value", "old"), [("num_classes", 7, 5),
                                                   ("model", "slowfast_r50_4x16", "slowfast_tiny")])
def test_resuming_with_another_model_shape_is_one_line_before_any_data_work(tiny_root, run_copy, key, value, old):
    line = one_line_error(run_command("train.py", tiny_root, run_copy, resume_from="auto", data_root="/nonexistent",
                                      **{key: value}))
    assert f"{key}={old!r}" in line and f"{key}={value!r}" in line and "--load_from=" in line


@pytest.mark.slow
def test_a_mid_epoch_resume_with_another_data_order_is_refused_unless_it_may_restart_at_the_next_epoch(
        tiny_root, run_copy):
    middle = run_copy / "checkpoints" / "iter_3"  # epoch 1, after 3 of its 5 iterations
    line = one_line_error(run_command("train.py", tiny_root, run_copy, resume_from=middle, batch_size=2,
                                      data_root="/nonexistent"))
    assert "mid-epoch (epoch 1 after 3 iterations)" in line and "batch_size=4" in line and "batch_size=2" in line
    assert "--resume_next_epoch=true" in line

    result = run_command("train.py", tiny_root, run_copy, resume_from=middle, batch_size=2, resume_next_epoch=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the rest of epoch 1 after 3 iterations is skipped and training continues at epoch 2" in result.stderr
    records = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    train_epochs = [r["epoch"] for r in records if r["mode"] == "train"]
    assert 1 in train_epochs and train_epochs[-1] == 2
    assert [r for r in records if r["mode"] == "train" and r["epoch"] == 2][-1]["iter"] == 3 + 10  # 10 of batch 2


@pytest.mark.parametrize(("make", "expected"), [
    (lambda tmp: tmp / "checkpoints" / "epoch_9", "epoch_9 does not exist"),
    (lambda tmp: (tmp / "w.pth").write_bytes(b"x") and tmp / "w.pth", "is a file, not a checkpoint"),
])
@pytest.mark.slow
def test_an_unusable_resume_from_is_one_line_before_any_data_work(tiny_root, tmp_path, make, expected):
    line = one_line_error(run_command("train.py", tiny_root, tmp_path / "run", data_root="/nonexistent",
                                      resume_from=make(tmp_path)))
    assert line.startswith("error: resume_from: ") and expected in line, line


class _Payload:
    """Pickles as a call of ``os.system``: what a crafted checkpoint file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin"])
def test_a_checkpoint_file_that_would_run_code_is_refused_in_one_line_and_nothing_runs(tiny_root, run_copy, tmp_path,
                                                                                       name):
    crafted, marker = run_copy / "checkpoints" / "epoch_2", tmp_path / "ran"
    torch.save({"state": _Payload(marker)}, crafted / name)
    meta = json.loads((crafted / "meta.json").read_text())
    write_manifest(crafted, {key: value for key, value in meta.items() if key != "files"})  # anyone can
    for resume_from in (crafted, "auto"):
        line = one_line_error(run_command("train.py", tiny_root, run_copy, resume_from=resume_from, max_epochs=3))
        assert f"{crafted / name} pickles posix.system, which could run code" in line, line
        assert not marker.exists()


def _tiny_state(seed):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


class _SavedState:
    """An object with a state, as the runner's position was before it was the runner's own (RunnerProgress)."""

    def __init__(self):
        self.state = {}

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        self.state = state


def test_a_checkpoint_saved_through_accelerates_registered_objects_still_resumes(tmp_path):
    """Before the run's objects were saved by CheckpointWriter, Accelerate's save_state wrote them
    (register_for_checkpointing): the same files, which load_checkpoint reads with weights_only=True."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from accel_slowfast.checkpointing.resume import load_checkpoint

    accelerator = Accelerator(cpu=True)
    model, optimizer = accelerator.prepare(*_tiny_state(0))
    old = _SavedState()
    old.state = {"epoch": 2, "inner_iter": 1, "iter": 7, "meta": {"best_score": 0.5},
                 "log_history": {"loss": [(1.5, 4)]}}
    accelerator.register_for_checkpointing(old)
    accelerator.save_state(str(tmp_path / "old"))
    assert (tmp_path / "old" / "custom_checkpoint_0.pkl").is_file()
    AcceleratorState._reset_state(reset_partial_state=True)

    accelerator = Accelerator(cpu=True)
    model2, optimizer2 = accelerator.prepare(*_tiny_state(1))
    new = _SavedState()
    load_checkpoint(tmp_path / "old", accelerator, [new])
    assert new.state == old.state
    assert torch.equal(model2.weight, model.weight)
    assert optimizer2.state_dict()["state"][0]["exp_avg"].equal(optimizer.state_dict()["state"][0]["exp_avg"])


def test_the_runners_state_is_what_checkpoints_held_before_it_was_the_runners_own(tmp_path):
    """custom_checkpoint_0.pkl written by RunnerProgress (tests/fixtures) loads into a Runner, which
    saves the same content in the same form."""
    from accelerate import Accelerator

    from accel_slowfast.engine.runner import Runner

    fixture = Path(__file__).parent / "fixtures" / "custom_checkpoint_0_runner_progress.pkl"
    old = torch.load(fixture, map_location="cpu", weights_only=True)
    runner = Runner(torch.nn.Linear(2, 2), None, Accelerator(cpu=True), tmp_path, train_step=None)
    runner.meta["kept"] = True
    runner.load_state_dict(old)
    assert (runner.epoch, runner.start_inner_iter, runner.iter) == (2, 3, 11)
    assert runner.meta == {**old["meta"], "kept": True}
    assert runner.log_buffer.history == {"loss": [(1.5, 4), (0.5, 2)], "top1": [(0.25, 4), (0.75, 2)]}
    del runner.meta["kept"]
    torch.save(runner.state_dict(epoch=2, inner_iter=3, iter=11), tmp_path / "new.pkl")
    assert torch.load(tmp_path / "new.pkl", weights_only=True) == old
    assert runner.state_dict(epoch=3, inner_iter=0, iter=12)["log_history"] == {}  # an epoch's end: all logged
