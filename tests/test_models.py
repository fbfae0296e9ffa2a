import pytest
import torch
from pytorchvideo.models.slowfast import create_slowfast

from accel_slowfast.models import PRESETS, build_model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_classifies_any_crop_and_clip_length(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7).eval()
    alpha = PRESETS[name].alpha
    for frames, size in ((PRESETS[name].clip_len, 64), (2 * alpha, 48)):
        fast = torch.randn(1, 3, frames, size, size)  # (B, C, T, H, W)
        video = [fast[:, :, ::alpha], fast]
        with torch.no_grad():
            assert model(video).shape == (1, 7)


def test_forward_does_not_overwrite_the_input_list():
    model = build_model("slowfast_tiny", num_classes=3).eval()
    fast = torch.randn(2, 3, 8, 32, 32)
    video = [fast[:, :, ::4], fast]
    with torch.no_grad():
        first, second = model(video), model(video)
    assert video[1] is fast and video[0].shape[2] == 2
    torch.testing.assert_close(first, second)


def test_r50_8x8_is_state_dict_compatible_with_pytorchvideo_slowfast_r50():
    hub = create_slowfast(model_num_class=400)  # the architecture of the hub's slowfast_r50
    ours = build_model("slowfast_r50_8x8", num_classes=400)
    hub_shapes = {k: v.shape for k, v in hub.state_dict().items()}
    our_shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert our_shapes == hub_shapes
    ours.load_state_dict(hub.state_dict())  # strict


def test_seed_preset_fuses_with_kernel_5_stride_8():
    model = build_model("slowfast_r50_4x16", num_classes=101)
    fusion = model.blocks[0].multipathway_fusion.conv_fast_to_slow
    assert fusion.kernel_size == (5, 1, 1) and fusion.stride == (8, 1, 1)
    assert model.alpha == 8
    assert 33.5e6 < sum(p.numel() for p in model.parameters()) < 34.5e6


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="slowfast_tiny"):
        build_model("slowfast_r18", 5)
