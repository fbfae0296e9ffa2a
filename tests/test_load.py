"""load_from (load.py): any known layout, verified, non-strict and reported; never arbitrary unpickling;
every unusable file is one line before any data work."""

import logging
from pathlib import Path

import pytest
import torch
from conftest import one_line_error, run_command

from accel_slowfast.checkpointing.load import load_weights, read_state_dict
from accel_slowfast.checkpointing.manifest import write_manifest
from accel_slowfast.errors import CheckpointError
from accel_slowfast.models.builders import build_model


def test_load_from_skips_a_head_of_another_class_count_and_reports_it(tmp_path, caplog):
    torch.manual_seed(1)
    source = build_model("slowfast_tiny", num_classes=400)
    torch.save({"model_state": source.state_dict()}, tmp_path / "k400.pyth")  # pytorchvideo zoo layout
    target = build_model("slowfast_tiny", num_classes=5)
    logger = logging.getLogger("accel_slowfast")
    logger.addHandler(caplog.handler)
    try:
        report = load_weights(target, tmp_path / "k400.pyth")
    finally:
        logger.removeHandler(caplog.handler)
    assert report == {"missing": ["blocks.6.proj.weight", "blocks.6.proj.bias"], "unexpected": [],
                      "shape_mismatch": ["blocks.6.proj.weight", "blocks.6.proj.bias"]}
    for key, value in target.state_dict().items():
        if not key.startswith("blocks.6.proj"):
            assert torch.equal(value, source.state_dict()[key]), key
    assert "blocks.6.proj.weight" in caplog.text


def test_load_from_refuses_files_that_need_arbitrary_unpickling(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Path("x")}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_weights(build_model("slowfast_tiny", 5), tmp_path / "bad.pth")


def test_a_checkpoint_folder_is_verified_before_its_weights_load(tmp_path):
    folder = tmp_path / "epoch_1"
    folder.mkdir()
    from safetensors.torch import save_file

    save_file(build_model("slowfast_tiny", 5).state_dict(), str(folder / "model.safetensors"))
    write_manifest(folder, {"epoch": 1, "inner_iter": 0, "iter": 5})
    assert len(read_state_dict(folder)) == len(build_model("slowfast_tiny", 5).state_dict())
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"^load_from: checkpoint .*epoch_1 is damaged: .*model\.safetensors has"):
        read_state_dict(folder)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda tmp: tmp / "missing.pth", "missing.pth does not exist"),
    (lambda tmp: (tmp / "junk.pth").write_bytes(b"not a torch file") and tmp / "junk.pth",
     "junk.pth does not read as a torch checkpoint"),
])
@pytest.mark.slow
def test_an_unusable_load_from_is_one_line_before_any_data_work(tiny_root, tmp_path, make, expected):
    line = one_line_error(run_command("train.py", tiny_root, tmp_path / "run", data_root="/nonexistent",
                                      load_from=make(tmp_path)))
    assert line.startswith("error: load_from: ") and expected in line, line
