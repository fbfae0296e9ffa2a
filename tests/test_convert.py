"""mmaction2 -> ours: the converted fixture reproduces mmaction2's own logits.

The fixtures come from ``tools/make_mmaction2_fixture.py`` run in a side virtualenv with mmaction2
1.2.0: mmaction2's seed SlowFast R50 4x16x1 config with widths / 8 and one block per stage, its
checkpoint, a uint8 clip and mmaction2's eval-mode logits. Our matching model is the
``slowfast_r50_4x16_mmaction2`` preset with the same reductions (``TINY``).
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from accel_slowfast.checkpointing.load import load_weights, read_state_dict
from accel_slowfast.commands.convert import convert_file, main
from accel_slowfast.errors import CheckpointError
from accel_slowfast.models.builders import build_model
from accel_slowfast.models.mmaction2 import mmaction2_to_ours

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINT = FIXTURES / "mmaction2_slowfast_tiny.pth"
TINY = dict(model_depth=18, stem_dim_outs=(8, 1))  # mmaction2: stage_blocks (1, 1, 1, 1), base_channels 8 / 1


def our_logits(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Our logits on the fixture's uint8 clip, which the model normalises and packs itself, and mmaction2's."""
    io = torch.load(FIXTURES / "mmaction2_slowfast_io.pt", weights_only=True)
    with torch.no_grad():
        return model.eval()(io["clip"]), io["logits"]  # clip: uint8 (N, C, T, H, W)


def test_converted_checkpoint_reproduces_mmaction2_logits(tmp_path):
    main([str(CHECKPOINT), str(tmp_path / "ours.pth"), "--model", ""])  # exits only when it fails
    model = build_model("slowfast_r50_4x16_mmaction2", num_classes=7, **TINY)
    report = load_weights(model, tmp_path / "ours.pth")
    assert report == {"missing": [], "unexpected": [], "shape_mismatch": []}
    ours, theirs = our_logits(model)
    assert theirs.abs().max() > 1  # logits of unit scale: a wrong mapping would show
    assert (ours - theirs).abs().max() < 1e-4


def test_load_from_converts_mmaction2_files_on_the_fly(caplog):
    model = build_model("slowfast_r50_4x16_mmaction2", num_classes=7, **TINY)
    with caplog.at_level(logging.INFO, logger="accel_slowfast"):
        report = load_weights(model, CHECKPOINT)
    assert report == {"missing": [], "unexpected": [], "shape_mismatch": []}
    assert "mmaction2 checkpoint" in caplog.text
    ours, theirs = our_logits(model)
    assert (ours - theirs).abs().max() < 1e-4


def test_full_r50_4x16_maps_onto_the_mmaction2_preset_key_for_key():
    shapes = json.loads((FIXTURES / "mmaction2_slowfast_r50_shapes.json").read_text())  # mmaction2 1.2.0, 400 classes
    state = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    converted, dropped = mmaction2_to_ours(state)
    assert dropped == []
    own = build_model("slowfast_r50_4x16_mmaction2", num_classes=400).state_dict()
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in own.items()}
    assert shapes["cls_head.fc_cls.weight"] == [400, 2048 + 256]


def test_fc_columns_move_from_fast_slow_to_slow_fast_order():
    state = {
        "backbone.slow_path.layer4.0.conv3.conv.weight": torch.zeros(3, 1, 1, 1, 1),  # slow width 3
        "backbone.fast_path.layer4.0.conv3.conv.weight": torch.zeros(2, 1, 1, 1, 1),  # fast width 2
        "cls_head.fc_cls.weight": torch.tensor([[0.0, 1, 2, 3, 4]]),  # mmaction2: [fast(2), slow(3)]
        "cls_head.fc_cls.bias": torch.zeros(1),
        "data_preprocessor.mean": torch.zeros(3),
    }
    converted, dropped = mmaction2_to_ours(state)
    assert converted["blocks.6.proj.weight"].tolist() == [[2.0, 3, 4, 0, 1]]  # ours: [slow(3), fast(2)]
    assert dropped == ["data_preprocessor.mean"]
    state["cls_head.fc_cls.weight"] = torch.zeros(1, 6)
    with pytest.raises(ValueError, match="6 inputs"):
        mmaction2_to_ours(state)


def test_cli_checks_the_result_against_a_preset(tmp_path, capsys):
    # The tiny fixture does not fit the full-size preset: refused, nothing written.
    with pytest.raises(SystemExit) as stop:
        main([str(CHECKPOINT), str(tmp_path / "out.pth")])
    assert stop.value.code == 1
    assert "does not match preset 'slowfast_r50_4x16_mmaction2'" in capsys.readouterr().err
    assert not (tmp_path / "out.pth").exists()
    torch.save({"state_dict": build_model("slowfast_tiny", 3).state_dict()}, tmp_path / "ours.pth")
    with pytest.raises(ValueError, match="not an mmaction2"):
        convert_file(tmp_path / "ours.pth", tmp_path / "out.pth")


def test_mmcv_meta_with_numpy_scalars_loads_but_other_objects_are_refused(tmp_path):
    weights = {"backbone.slow_path.conv1.conv.weight": torch.ones(2, 3, 1, 7, 7)}
    meta = {"hook_msgs": {"best_score": np.float64(0.75), "best_ckpt": "epoch_5.pth"}, "epoch": np.int64(5)}
    torch.save({"meta": meta, "state_dict": weights, "optimizer": {}}, tmp_path / "mmcv.pth")
    assert list(read_state_dict(tmp_path / "mmcv.pth")) == ["blocks.0.multipathway_blocks.0.conv.weight"]

    meta["message_hub"] = logging.LoggerAdapter  # stands for a library class (mmengine's HistoryBuffer ...)
    torch.save({"meta": meta, "state_dict": weights}, tmp_path / "mmengine.pth")
    with pytest.raises(CheckpointError, match=r"weights_only=True \(it pickles \['logging.LoggerAdapter'\]\)"):
        read_state_dict(tmp_path / "mmengine.pth")
