"""The clip transforms: layouts, where the crops land, agreement with pytorchvideo's float
transforms, RNG use; and the model's normalization of uint8 clips."""

import pytest
import torch
from pytorchvideo.transforms import functional as pv

from accel_slowfast.data.transforms import (
    RandomResizedCrop,
    ToChannelsFirst,
    UniformCrop,
    train_transform,
    val_transform,
)
from accel_slowfast.models.builders import build_model


def _train(crop_size=32, flip_ratio=0.5, crop_area=(0.08, 1.0), **kwargs):
    return train_transform(crop_size=crop_size, crop_area=crop_area, flip_ratio=flip_ratio, **kwargs)


def _coordinates(t=4, h=48, w=64) -> torch.Tensor:
    """uint8 ``(T, H, W, C)`` frames whose channel 0 holds each pixel's row, 1 its column, 2 its frame."""
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    return torch.stack([rows.expand(t, h, w), cols.expand(t, h, w),
                        torch.arange(t)[:, None, None].expand(t, h, w)], dim=-1).to(torch.uint8)


def _random_frames(t=4, h=48, w=64) -> torch.Tensor:
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _float_cthw(frames: torch.Tensor) -> torch.Tensor:
    """pytorchvideo's layout of the same frames: float ``(C, T, H, W)``."""
    return frames.permute(3, 0, 1, 2).float()


def test_train_output_is_uint8_channels_first_of_the_crop_size():
    frames = torch.full((8, 30, 40, 3), 200, dtype=torch.uint8)
    out = _train()(frames)
    assert out.shape == (3, 8, 32, 32) and out.dtype == torch.uint8
    assert torch.equal(out, torch.full_like(out, 200))
    assert torch.equal(frames, torch.full((8, 30, 40, 3), 200, dtype=torch.uint8))  # the input is left alone


def test_transforms_refuse_float_frames():
    with pytest.raises(TypeError, match="uint8"):
        val_transform(short_side=32, crop_size=32)(torch.zeros(2, 32, 32, 3))


@pytest.mark.parametrize("seed", range(12))
def test_train_crop_is_a_random_resized_crop_of_the_whole_frame(seed):
    """The crop is drawn on the decoded frame: area 8-100 % of it, aspect 3/4-4/3, every frame alike."""
    torch.manual_seed(seed)
    rows, cols, frames = _train(crop_size=24, flip_ratio=0.0)(_coordinates()).float()
    # Bilinear sampling keeps the corner samples within half a pixel of the crop's edges.
    height = float(rows.max() - rows.min()) * 24 / 23
    width = float(cols.max() - cols.min()) * 24 / 23
    assert 0.08 * 0.8 <= height * width / (48 * 64) <= 1.0 and 3 / 4 * 0.85 <= width / height <= 4 / 3 * 1.15
    assert rows.min() >= 0 and rows.max() <= 47 and cols.min() >= 0 and cols.max() <= 63
    torch.testing.assert_close(frames, torch.arange(4.0)[:, None, None].expand(4, 24, 24))
    assert torch.equal(rows, rows[:1].expand_as(rows)) and torch.equal(cols, cols[:1].expand_as(cols))


@pytest.mark.parametrize("seed", range(6))
def test_random_resized_crop_matches_pytorchvideo_on_float_frames_within_one_level(seed):
    """Same RNG draws, same region, same bilinear sampling as pytorchvideo's float transform;
    resizing in uint8 only rounds each pixel."""
    frames = _random_frames()
    torch.manual_seed(seed)
    ours = RandomResizedCrop(24, (0.08, 1.0))(frames)
    torch.manual_seed(seed)
    theirs = pv.random_resized_crop(_float_cthw(frames), 24, 24, scale=(0.08, 1.0), aspect_ratio=(3 / 4, 4 / 3))
    assert (_float_cthw(ours) - theirs).abs().max() <= 1.01  # fixed-point weights: a hair over one level


def test_val_matches_pytorchvideo_short_side_scale_and_centre_crop_within_one_level():
    frames = _random_frames(h=30, w=50)
    ours = val_transform(short_side=40, crop_size=36)(frames).float()
    theirs = pv.uniform_crop(pv.short_side_scale(_float_cthw(frames), 40), 36, 1)
    assert ours.shape == theirs.shape == (3, 4, 36, 36)
    assert (ours - theirs).abs().max() <= 1.01  # fixed-point weights: a hair over one level


def test_train_randomness_comes_from_torch_global_rng():
    frames = _random_frames()
    transform = _train()
    torch.manual_seed(3)
    first = transform(frames)
    torch.manual_seed(3)
    assert torch.equal(transform(frames), first)
    assert any(not torch.equal(transform(frames), first) for _ in range(3))


def test_train_flip_mirrors_the_same_crop():
    frames = _random_frames()
    torch.manual_seed(5)
    kept = _train(flip_ratio=0.0)(frames)
    torch.manual_seed(5)
    flipped = _train(flip_ratio=1.0)(frames)
    assert torch.equal(flipped, kept.flip(-1))


def test_train_full_area_crop_of_a_square_frame_is_a_plain_resize():
    frames = _random_frames(t=2, h=40, w=40)
    out = _train(crop_size=20, flip_ratio=0.0, crop_area=(1.0, 1.0))(frames).float()
    expected = torch.nn.functional.interpolate(_float_cthw(frames), size=(20, 20), mode="bilinear")
    assert (out - expected).abs().max() <= 1.01  # fixed-point weights: a hair over one level


def test_val_resizes_the_short_side_then_crops_the_centre():
    out = val_transform(short_side=40, crop_size=40)(_coordinates(t=2, h=20, w=40))
    assert out.shape == (3, 2, 40, 40)
    # 20x40 -> 40x80, centre 40 columns = source columns 10..30
    assert 9 <= int(out[1].min()) <= 11 and 29 <= int(out[1].max()) <= 31


@pytest.mark.parametrize("height, width", [(6, 10), (10, 6)])
def test_uniform_crops_take_the_start_centre_and_end_of_the_long_side(height, width):
    frames = _coordinates(t=1, h=height, w=width)
    channel = 0 if height > width else 1  # the long side's coordinate
    starts = [int(UniformCrop(4, k)(frames)[..., channel].min()) for k in range(3)]
    assert starts == [0, 3, 6]
    with pytest.raises(ValueError, match="position"):
        UniformCrop(4, 3)
    with pytest.raises(ValueError, match="does not fit"):
        UniformCrop(12)(frames)


def test_short_side_jitter_is_pyslowfast_scale_then_random_crop():
    transform = _train(crop_size=16, flip_ratio=0.0, short_side_jitter=(20, 30))
    frames = torch.stack([torch.arange(32)[:, None].expand(32, 48), torch.arange(48)[None, :].expand(32, 48),
                          torch.zeros(32, 48, dtype=torch.long)], dim=-1).expand(4, 32, 48, 3).to(torch.uint8)
    out = transform(frames).float()
    assert out.shape == (3, 4, 16, 16)
    # a plain crop of a frame resized by 20/32 .. 30/32: rows and columns step by 32/30 .. 32/20
    row_step = float((out[0, 0, 1:, 0] - out[0, 0, :-1, 0]).mean())
    col_step = float((out[1, 0, 0, 1:] - out[1, 0, 0, :-1]).mean())
    assert row_step == pytest.approx(col_step, abs=0.1) and 0.9 <= row_step <= 1.7


def test_to_channels_first_is_a_view():
    frames = _random_frames()
    out = ToChannelsFirst()(frames)
    assert out.shape == (3, 4, 48, 64) and out.data_ptr() == frames.data_ptr()


def test_model_normalizes_uint8_clips_with_its_mean_and_std():
    mean, std = (100.0, 110.0, 120.0), (50.0, 60.0, 70.0)
    model = build_model("slowfast_tiny", 5, mean=mean, std=std).eval()
    clip = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    normalized = (clip.float() - torch.tensor(mean).view(1, 3, 1, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), model(normalized))
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()  # checkpoints keep their keys
