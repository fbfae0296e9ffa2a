"""Checkpoint folders: the manifest catches damage before anything loads; resume_from=auto takes the
newest intact checkpoint; a damaged explicit path, or one that does not fit, is one line before any data work."""

import json
import logging
import shutil
import subprocess
import sys

import pytest
from conftest import one_line_error, run_command

from accel_slowfast.errors import CheckpointError
from accel_slowfast.workdir import find_resume_checkpoint, remove_staging, verify_checkpoint, write_manifest


def _folder(tmp_path, name="epoch_1", iteration=5):
    folder = tmp_path / "checkpoints" / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    (folder / "optimizer.bin").write_bytes(b"o" * 500)
    write_manifest(folder, {"epoch": 1, "inner_iter": 0, "iter": iteration})
    return folder


def test_the_manifest_records_every_file_and_verification_names_the_damaged_one(tmp_path):
    folder = _folder(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["iter"] == 5 and set(meta["files"]) == {"model.safetensors", "optimizer.bin"}
    assert meta["files"]["optimizer.bin"]["bytes"] == 500
    assert verify_checkpoint(folder)["iter"] == 5

    with open(folder / "model.safetensors", "r+b") as file:  # same size, one byte changed
        file.write(b"x")
    with pytest.raises(CheckpointError, match=r"model\.safetensors differs .*SHA-256"):
        verify_checkpoint(folder)
    (folder / "model.safetensors").write_bytes(b"w" * 400)
    with pytest.raises(CheckpointError, match=r"model\.safetensors has 400 bytes, 1000 were written"):
        verify_checkpoint(folder)
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    (folder / "optimizer.bin").unlink()
    with pytest.raises(CheckpointError, match=r"optimizer\.bin is missing"):
        verify_checkpoint(folder)
    (folder / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete: it has no meta.json"):
        verify_checkpoint(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        verify_checkpoint(tmp_path / "nope")


def test_auto_resume_skips_damaged_and_incomplete_checkpoints_naming_them(tmp_path, caplog):
    older = _folder(tmp_path, "epoch_1", 5)
    newer = _folder(tmp_path, "iter_7", 7)
    (tmp_path / "checkpoints" / "epoch_2").mkdir()  # no meta.json: a save that never finished
    assert find_resume_checkpoint(tmp_path) == newer
    (newer / "model.safetensors").write_bytes(b"w" * 10)  # truncated
    with caplog.at_level(logging.WARNING, logger="accel_slowfast"):
        assert find_resume_checkpoint(tmp_path) == older
    assert "iter_7 is damaged" in caplog.text and "epoch_2: it has no meta.json" in caplog.text
    (older / "meta.json").write_text("{not json")
    assert find_resume_checkpoint(tmp_path) is None


def test_stale_staging_folders_and_files_are_removed(tmp_path):
    kept = _folder(tmp_path)
    (tmp_path / "checkpoints" / ".tmp_iter_4").mkdir()
    (tmp_path / "checkpoints" / ".tmp_iter_4" / "optimizer.bin").write_bytes(b"half")
    (tmp_path / "checkpoints" / ".tmp_best_top1_acc_epoch_1.pth").write_bytes(b"half")
    assert [p.name for p in remove_staging(tmp_path)] == [".tmp_best_top1_acc_epoch_1.pth", ".tmp_iter_4"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [kept.name]


# --- end to end, as users run it ------------------------------------------------------------------

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
    predict = subprocess.run([sys.executable, "-m", "accel_slowfast.predict", str(video), f"--checkpoint={best}"],
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


@pytest.mark.parametrize(("key", "make", "expected"), [
    ("resume_from", lambda tmp: tmp / "checkpoints" / "epoch_9", "epoch_9 does not exist"),
    ("resume_from", lambda tmp: (tmp / "w.pth").write_bytes(b"x") and tmp / "w.pth", "is a file, not a checkpoint"),
    ("load_from", lambda tmp: tmp / "missing.pth", "missing.pth does not exist"),
    ("load_from", lambda tmp: (tmp / "junk.pth").write_bytes(b"not a torch file") and tmp / "junk.pth",
     "junk.pth does not read as a torch checkpoint"),
])
def test_unusable_resume_from_and_load_from_are_one_line_before_any_data_work(tiny_root, tmp_path, key, make,
                                                                               expected):
    line = one_line_error(run_command("train.py", tiny_root, tmp_path / "run", data_root="/nonexistent",
                                      **{key: make(tmp_path)}))
    assert line.startswith(f"error: {key}: ") and expected in line, line
