"""The clip transforms: shapes, normalization, where the random crop lands, RNG use, packing."""

import pytest
import torch

from accel_slowfast.data.transforms import pack_pathway, train_transform, val_transform

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _train(crop_size=32, flip_ratio=0.5, crop_area=(0.08, 1.0), **norm):
    norm = norm or dict(mean=MEAN, std=STD)
    return train_transform(crop_size=crop_size, crop_area=crop_area, flip_ratio=flip_ratio, **norm)


def _coordinates(t=4, h=48, w=64) -> torch.Tensor:
    """A clip whose channel 0 holds each pixel's row, channel 1 its column, channel 2 its frame."""
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    return torch.stack([rows.expand(t, h, w), cols.expand(t, h, w),
                        torch.arange(t, dtype=torch.float32)[:, None, None].expand(t, h, w)])  # (C, T, H, W)


def test_train_output_shape_and_normalization():
    clip = torch.full((3, 8, 30, 40), 200.0)  # (C, T, H, W)
    out = _train()(clip)
    assert out.shape == (3, 8, 32, 32) and out.dtype == torch.float32
    expected = (200.0 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out, expected.view(3, 1, 1, 1).expand_as(out))
    assert torch.equal(clip, torch.full((3, 8, 30, 40), 200.0))  # the input is left alone


@pytest.mark.parametrize("seed", range(12))
def test_train_crop_is_a_random_resized_crop_of_the_whole_frame(seed):
    """The crop is drawn on the decoded frame: area 8-100 % of it, aspect 3/4-4/3, every frame alike."""
    torch.manual_seed(seed)
    out = _train(crop_size=24, flip_ratio=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))(_coordinates())
    rows, cols, frames = out
    # Bilinear sampling keeps the corner samples within half a pixel of the crop's edges.
    height = float(rows.max() - rows.min()) * 24 / 23
    width = float(cols.max() - cols.min()) * 24 / 23
    assert 0.08 * 0.8 <= height * width / (48 * 64) <= 1.0 and 3 / 4 * 0.85 <= width / height <= 4 / 3 * 1.15
    assert rows.min() >= 0 and rows.max() <= 47 and cols.min() >= 0 and cols.max() <= 63
    torch.testing.assert_close(frames, torch.arange(4.0)[:, None, None].expand(4, 24, 24))
    assert torch.equal(rows, rows[:1].expand_as(rows)) and torch.equal(cols, cols[:1].expand_as(cols))


def test_train_randomness_comes_from_torch_global_rng():
    clip = torch.rand(3, 4, 48, 64) * 255
    transform = _train()
    torch.manual_seed(3)
    first = transform(clip)
    torch.manual_seed(3)
    assert torch.equal(transform(clip), first)
    assert any(not torch.equal(transform(clip), first) for _ in range(3))


def test_train_flip_mirrors_the_same_crop():
    clip = torch.rand(3, 4, 48, 64) * 255
    torch.manual_seed(5)
    kept = _train(flip_ratio=0.0)(clip)
    torch.manual_seed(5)
    flipped = _train(flip_ratio=1.0)(clip)
    assert torch.equal(flipped, kept.flip(-1))


def test_train_full_area_crop_of_a_square_frame_is_a_plain_resize():
    clip = torch.rand(3, 2, 40, 40) * 255
    out = _train(crop_size=20, flip_ratio=0.0, crop_area=(1.0, 1.0), mean=(0.0,) * 3, std=(1.0,) * 3)(clip)
    torch.testing.assert_close(out, torch.nn.functional.interpolate(clip, size=(20, 20), mode="bilinear"))


def test_val_resizes_the_short_side_then_crops_the_centre():
    clip = _coordinates(t=2, h=20, w=40)
    out = val_transform(short_side=40, crop_size=40, mean=(0.0,) * 3, std=(1.0,) * 3)(clip)
    assert out.shape == (3, 2, 40, 40)
    # 20x40 -> 40x80, centre 40 columns = source columns 10..30
    assert 9 <= float(out[1].min()) <= 10.5 and 29 <= float(out[1].max()) <= 30.5


def test_pack_pathway_keeps_every_alpha_th_frame_for_the_slow_pathway():
    frames = torch.arange(16.0).view(1, 16, 1, 1).expand(3, 16, 2, 2)
    slow, fast = pack_pathway(frames, alpha=4)
    assert fast is frames and slow[0, :, 0, 0].tolist() == [0.0, 4.0, 8.0, 12.0]
    with pytest.raises(ValueError, match="multiple"):
        pack_pathway(frames[:, :10], alpha=4)


def test_short_side_jitter_is_pyslowfast_scale_then_random_crop():
    from accel_slowfast.data.transforms import train_transform as build

    transform = build(crop_size=16, crop_area=(0.08, 1.0), flip_ratio=0.0, mean=(0.0,) * 3, std=(1.0,) * 3,
                      short_side_jitter=(20, 30))
    frames = torch.arange(32 * 48, dtype=torch.float32).view(1, 1, 32, 48).expand(3, 4, 32, 48).contiguous()
    out = transform(frames.clone())
    assert out.shape == (3, 4, 16, 16)
    # a plain crop of a resized frame: values increase along rows and columns
    assert (out[0, 0, :, 1:] > out[0, 0, :, :-1]).all() and (out[0, 0, 1:, :] > out[0, 0, :-1, :]).all()
