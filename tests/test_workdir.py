"""Checkpoint folders: the manifest catches damage before anything loads; resume_from=auto takes the
newest intact checkpoint; a damaged explicit path, or one that does not fit, is one line before any data work."""

import json
import logging

import pytest

from accel_slowfast.checkpointing.layout import (
    find_resume_checkpoint,
    remove_staging,
    verify_checkpoint,
    write_manifest,
)
from accel_slowfast.errors import CheckpointError


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

