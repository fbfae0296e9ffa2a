"""Per-clip regularisation (data/augment.py): uint8 clips in and out, drawn from torch's seeded RNG."""

import torch

from accel_slowfast.data.augment import RandAugment, RandomErasing
from accel_slowfast.data.transforms import train_transform
from accel_slowfast.models.presets import IMAGENET_MEAN, IMAGENET_STD


def _clip(frames=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=g)  # (T, H, W, C)


def _seeded(transform, clip, seed):
    torch.manual_seed(seed)
    return transform(clip)


def test_rand_augment_keeps_uint8_clips_and_repeats_with_the_seed():
    augment, clip = RandAugment(magnitude=9, layers=2, fill=IMAGENET_MEAN), _clip()
    outputs = [_seeded(augment, clip, seed) for seed in range(6)]
    assert all(out.dtype == torch.uint8 and out.shape == clip.shape for out in outputs)
    assert torch.equal(_seeded(augment, clip, 3), outputs[3])
    assert sum(not torch.equal(out, clip) for out in outputs) >= 3  # each operation applies with probability 0.5


def test_rand_augment_fills_what_a_rotation_uncovers_with_the_mean():
    clip = torch.full((2, 16, 16, 3), 255, dtype=torch.uint8)
    augment = RandAugment(magnitude=10, layers=14, fill=(10, 20, 30))  # every operation drawn, half applied
    corners = {tuple(_seeded(augment, clip, seed)[0, 0, 0].tolist()) for seed in range(20)}
    assert (10, 20, 30) in corners


def test_random_erasing_erases_one_box_at_the_same_place_in_every_frame_with_fresh_noise():
    clip = torch.zeros(4, 64, 64, 3, dtype=torch.uint8)
    erase = RandomErasing(1.0, mean=(100.0, 150.0, 200.0), std=(10.0, 10.0, 10.0))
    out = _seeded(erase, clip, 0)
    assert out.dtype == torch.uint8 and out.shape == clip.shape and torch.equal(clip, torch.zeros_like(clip))
    erased = (out != 0).any(-1)  # (T, H, W)
    assert all(torch.equal(erased[t], erased[0]) for t in range(4))
    rows, cols = erased[0].any(1).nonzero().flatten(), erased[0].any(0).nonzero().flatten()
    box = erased[0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.all() and 0.02 * 64 * 64 <= box.numel() <= 64 * 64 / 3 + 64
    pixels = out[erased].float()  # (n, C): mean + std * N(0, 1), as PySlowFast's noise is after normalizing
    assert torch.allclose(pixels.mean(0), torch.tensor([100.0, 150.0, 200.0]), atol=3)
    assert torch.allclose(pixels.std(0), torch.tensor([10.0, 10.0, 10.0]), atol=2)
    assert not torch.equal(out[0][erased[0]], out[1][erased[1]])


def test_random_erasing_applies_with_its_probability():
    clip = _clip()
    assert _seeded(RandomErasing(0.0, IMAGENET_MEAN, IMAGENET_STD), clip, 0) is clip
    erased = sum(not torch.equal(_seeded(RandomErasing(0.25, IMAGENET_MEAN, IMAGENET_STD), clip, seed), clip)
                 for seed in range(200))
    assert 30 <= erased <= 70


def test_the_training_transform_ends_uint8_channels_first_with_both():
    augment = [RandAugment(7, 4, IMAGENET_MEAN), RandomErasing(0.25, IMAGENET_MEAN, IMAGENET_STD)]
    transform = train_transform(crop_size=24, crop_area=(0.5, 1.0), flip_ratio=0.5, augment=augment)
    out = _seeded(transform, _clip(frames=8, size=40), 1)
    assert out.dtype == torch.uint8 and out.shape == (3, 8, 24, 24)
    assert torch.equal(_seeded(transform, _clip(frames=8, size=40), 1), out)
