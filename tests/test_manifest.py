"""Checkpoint manifests (manifest.py): the manifest catches damage before anything loads; one parser
reads meta.json; resume_from=auto takes the newest intact checkpoint; checkpoints are sorted and
counted per run."""

import json
import logging
from pathlib import Path

import pytest

from accel_slowfast.checkpointing.manifest import (
    find_resume_checkpoint,
    read_meta,
    sorted_checkpoints,
    verify_checkpoint,
    write_manifest,
)
from accel_slowfast.checkpointing.names import staging_path
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


def test_meta_json_that_does_not_read_is_one_line_and_sorts_first_belonging_to_no_run(tmp_path):
    root = tmp_path / "checkpoints"
    good = _folder(tmp_path, "epoch_1", 5)
    for name, text in [("iter_9", "{not json"), ("iter_8", "[1, 2]"), ("iter_7", '{"epoch": 1}'),
                       ("iter_6", '{"iter": "many"}')]:
        (root / name).mkdir()
        (root / name / "meta.json").write_text(text)
        with pytest.raises(CheckpointError, match=f"checkpoint {root / name} is damaged: .*meta.json does not read"):
            read_meta(root / name)
    assert sorted_checkpoints(root) == [root / n for n in ("iter_6", "iter_7", "iter_8", "iter_9")] + [good]
    assert sorted_checkpoints(root, "any run") == []


def _fake_checkpoint(root: Path, name: str, iteration: int, run_id: str | None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    write_manifest(folder, {"epoch": 1, "inner_iter": 0, "iter": iteration,
                            **({"run_id": run_id} if run_id else {})})
    return folder


def test_checkpoints_are_counted_per_run_and_staged_under_the_runs_id(tmp_path):
    root = tmp_path / "checkpoints"
    old = [_fake_checkpoint(root, "epoch_2", 10, "old"), _fake_checkpoint(root, "epoch_3", 15, None)]
    new = [_fake_checkpoint(root, "iter_3", 3, "new"), _fake_checkpoint(root, "epoch_1", 5, "new")]
    assert sorted_checkpoints(root, "new") == new
    assert sorted_checkpoints(root) == [new[0], new[1], *old]
    assert staging_path(root / "epoch_1", "a").name != staging_path(root / "epoch_1", "b").name
