"""X3D presets (``accel_slowfast/x3d.py``): pytorchvideo's hub networks with an adaptive head, one clip in."""

import pytest
import torch
from pytorchvideo.models.hub.x3d import x3d_xs

from accel_slowfast.checkpointing.load import load_weights
from accel_slowfast.commands.convert import convert_file
from accel_slowfast.errors import CheckpointError
from accel_slowfast.models.builders import PRESETS, apply_fast_path, build_model, count_parameters
from accel_slowfast.models.x3d import X3D
from accel_slowfast.recipe.recipe import Recipe


def test_a_pytorchvideo_zoo_checkpoint_loads_as_it_is_and_gives_the_hub_model_s_output(tmp_path):
    """The zoo's X3D_XS.pyth holds ``{"model_state": state_dict}`` of the hub's ``x3d_xs``: every tensor
    loads, and at the preset's own clip (4 x 160 px) the adaptive head averages the window the hub's
    fixed pool does, so our softmax equals the hub's output."""
    torch.manual_seed(0)
    hub = x3d_xs(pretrained=False).eval()
    torch.save({"model_state": hub.state_dict(), "epoch": 300}, tmp_path / "X3D_XS.pyth")
    ours = build_model("x3d_xs", num_classes=400).eval()
    assert isinstance(ours, X3D)
    assert load_weights(ours, tmp_path / "X3D_XS.pyth") == {"missing": [], "unexpected": [], "shape_mismatch": []}
    preset = PRESETS["x3d_xs"]
    clip = torch.randn(1, 3, preset.clip_len, preset.crop_size, preset.crop_size)  # (B, C, T, H, W), normalized
    with torch.no_grad():
        torch.testing.assert_close(ours(clip).softmax(dim=1), hub(clip), rtol=1e-5, atol=1e-7)


def test_the_presets_carry_the_published_clips_and_one_network():
    assert {name: (p.clip_len, p.frame_interval, p.crop_size) for name, p in PRESETS.items() if p.backbone == "x3d"} \
        == {"x3d_xs": (4, 12, 160), "x3d_s": (13, 6, 160), "x3d_m": (16, 5, 224)}
    assert 3.7e6 < count_parameters(build_model("x3d_m", 400)) < 3.9e6  # the zoo's 3.79 M
    assert Recipe(model="x3d_s", clip_len=13).clip_len == 13  # one pathway: no alpha to divide clip_len


def test_the_synthetic_default_clip_trains_and_a_float_clip_is_taken_as_normalized():
    torch.manual_seed(0)
    model = build_model("x3d_xs", num_classes=5)
    clip = torch.randint(0, 256, (1, 3, 16, 56, 56), dtype=torch.uint8)  # the default recipe's clips
    model(clip).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(model.normalize(clip)), model(clip))


def test_frozen_stages_four_trains_the_classifier_only():
    model = build_model("x3d_xs", num_classes=3, frozen_stages=4).train()
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["blocks.5.proj.weight",
                                                                                 "blocks.5.proj.bias"]
    assert not model.blocks[5].pool.training and model.blocks[5].proj.training  # conv5 / lin5 BN keep statistics
    partial = build_model("x3d_xs", num_classes=3, frozen_stages=2)
    assert {name.split(".")[1] for name, p in partial.named_parameters() if p.requires_grad} == {"3", "4", "5"}


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = build_model("x3d_xs", num_classes=3).eval()
    clip = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        expected = model(clip)
        torch.testing.assert_close(apply_fast_path(model, channels_last=True, compile=False)(clip), expected,
                                   rtol=1e-4, atol=1e-5)


def test_mmaction2_conversion_refuses_x3d_in_one_line(tmp_path):
    mmaction2_x3d = {"backbone.conv1_s.conv.weight": torch.zeros(24, 3, 1, 3, 3),
                     "cls_head.fc2.weight": torch.zeros(400, 2048)}  # mmaction2's X3D names
    torch.save({"state_dict": mmaction2_x3d}, tmp_path / "x3d_mmaction2.pth")
    with pytest.raises(CheckpointError, match="another backbone than SlowFast.*X3D_M.pyth") as error:
        load_weights(build_model("x3d_m", 400), tmp_path / "x3d_mmaction2.pth")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="x3d_m is an x3d preset: only SlowFast checkpoints convert"):
        convert_file(tmp_path / "x3d_mmaction2.pth", tmp_path / "out.pth", model="x3d_m")
