"""The one checkpoint writer (writer.py): a save is staged and renamed once complete, a failure on
any process is one error that leaves no partial save and keeps what was saved before, only this
run's oldest checkpoints are removed, the best weights go through the same steps."""

import errno
import json

import pytest
import torch
from accelerate import Accelerator

from accel_slowfast.checkpointing.faults import CheckpointWriteError
from accel_slowfast.checkpointing.manifest import verify_checkpoint, write_manifest
from accel_slowfast.checkpointing.writer import CheckpointWriter, remove_staging, save_best
from accel_slowfast.engine.runner import Runner


def _runner(tmp_path):
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    model, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
    runner = Runner(model, optimizer, accelerator, tmp_path, train_step=None)
    runner.meta["best_score"] = 0.5
    return runner


def _names(tmp_path):
    return sorted(p.name for p in (tmp_path / "checkpoints").iterdir())


def test_a_checkpoint_holds_the_runner_the_objects_the_recipe_and_its_manifest(tmp_path):
    runner = _runner(tmp_path)
    runner.log_buffer.update({"loss": 2.0}, 4)
    ema = torch.nn.Linear(1, 1)  # any object with a state_dict
    writer = CheckpointWriter({"lr": 0.1}, max_keep_ckpts=0, objects=[ema], run_id="run")
    writer.save(runner, "iter_4", epoch=0, inner_iter=4, iter=4)
    folder = tmp_path / "checkpoints" / "iter_4"
    assert writer.last_saved == (4, folder) and _names(tmp_path) == ["iter_4"]
    meta = verify_checkpoint(folder)
    assert {key: meta[key] for key in ("epoch", "inner_iter", "iter", "run_id", "num_processes")} == {
        "epoch": 0, "inner_iter": 4, "iter": 4, "run_id": "run", "num_processes": 1}
    saved = torch.load(folder / "custom_checkpoint_0.pkl", weights_only=True)
    assert saved == runner.state_dict(epoch=0, inner_iter=4, iter=4)
    assert meta["meta"] == {"best_score": 0.5} and meta["log_history"] == {"loss": [[2.0, 4]]}  # (JSON has lists)
    assert saved["log_history"] == {"loss": [(2.0, 4)]} and saved["meta"] == {"best_score": 0.5}
    assert torch.load(folder / "custom_checkpoint_1.pkl", weights_only=True).keys() == ema.state_dict().keys()
    assert (folder / "recipe.yaml").read_text() == "lr: 0.1\n"


def test_a_failed_save_is_one_error_and_leaves_no_partial_folder(tmp_path, monkeypatch):
    runner = _runner(tmp_path)
    writer = CheckpointWriter({}, max_keep_ckpts=0, run_id="run")
    writer.save(runner, "epoch_1", epoch=1, inner_iter=0, iter=3)

    def full_disk(folder):
        (tmp_path / "checkpoints" / ".tmp_run_iter_5").mkdir()
        (tmp_path / "checkpoints" / ".tmp_run_iter_5" / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.accelerator, "save_state", full_disk)
    with pytest.raises(CheckpointWriteError, match="no space left to save iter_5 in work_dir .* the last good "
                                                   "checkpoint is .*epoch_1"):
        writer.save(runner, "iter_5", epoch=1, inner_iter=2, iter=5)
    assert _names(tmp_path) == ["epoch_1"] and writer.last_saved[0] == 3
    verify_checkpoint(tmp_path / "checkpoints" / "epoch_1")


def test_max_keep_ckpts_removes_only_this_runs_oldest(tmp_path):
    runner = _runner(tmp_path)
    other = tmp_path / "checkpoints" / "epoch_1"
    other.mkdir(parents=True)
    write_manifest(other, {"epoch": 1, "inner_iter": 0, "iter": 1, "run_id": "another"})
    writer = CheckpointWriter({}, max_keep_ckpts=2, run_id="run")
    for iteration in (2, 4, 6):
        writer.save(runner, f"iter_{iteration}", epoch=1, inner_iter=iteration - 1, iter=iteration)
    assert _names(tmp_path) == ["epoch_1", "iter_4", "iter_6"]


def test_the_best_weights_replace_the_previous_best_and_a_failure_keeps_it(tmp_path, monkeypatch):
    runner = _runner(tmp_path)
    first, second = (tmp_path / "checkpoints" / f"best_top1_acc_epoch_{n}.pth" for n in (1, 2))
    save_best(runner, first, {"state_dict": {"w": torch.ones(1)}}, "run")
    save_best(runner, second, {"state_dict": {"w": torch.zeros(1)}}, "run", replaces=str(first))
    assert _names(tmp_path) == [second.name]
    assert torch.load(second, weights_only=True)["state_dict"]["w"].item() == 0

    def refused(obj, path):
        open(path, "wb").close()
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torch, "save", refused)
    with pytest.raises(CheckpointWriteError, match=r"could not save .*best_top1_acc_epoch_3.pth \(PermissionError: "
                                                   r".*Permission denied\); the partial save was removed"):
        save_best(runner, tmp_path / "checkpoints" / "best_top1_acc_epoch_3.pth", {}, "run", replaces=str(second))
    assert _names(tmp_path) == [second.name]


def test_stale_staging_folders_and_files_are_removed(tmp_path):
    kept = tmp_path / "checkpoints" / "epoch_1"
    kept.mkdir(parents=True)
    write_manifest(kept, {"epoch": 1, "inner_iter": 0, "iter": 5})
    (tmp_path / "checkpoints" / ".tmp_iter_4").mkdir()
    (tmp_path / "checkpoints" / ".tmp_iter_4" / "optimizer.bin").write_bytes(b"half")
    (tmp_path / "checkpoints" / ".tmp_best_top1_acc_epoch_1.pth").write_bytes(b"half")
    assert [p.name for p in remove_staging(tmp_path)] == [".tmp_best_top1_acc_epoch_1.pth", ".tmp_iter_4"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [kept.name]
    assert json.loads((kept / "meta.json").read_text())["iter"] == 5
