"""Clip transforms built from pytorchvideo's, plus pathway packing.

Frames enter as float ``(C, T, H, W)`` in 0-255 RGB (what pytorchvideo's decoders return);
the pipelines follow the seed recipe (REFERENCE.md §1):

    train: RandomResizedCrop(area, aspect 3/4-4/3) to crop_size² -> flip -> normalize
           or, with short_side_jitter (PySlowFast's): random short side in [min, max] ->
           random crop_size² crop -> flip -> normalize
    val:   short side -> centre crop crop_size² -> normalize

The seed resizes the short side to 256 before its RandomResizedCrop. A crop drawn as a
fraction of the frame's area with a given aspect ratio is the same region at any scale, so
training crops the decoded frames directly and resizes once: the same distribution of views,
one resampling instead of two, and about half the time (interpolating a whole 32-frame clip to
256 px cost as much as everything else in the transform).
"""

import torch
from pytorchvideo.transforms import Normalize, RandomResizedCrop, RandomShortSideScale, ShortSideScale
from torchvision.transforms import CenterCrop, Compose, RandomCrop, RandomHorizontalFlip


def train_transform(
    *,
    crop_size: int,
    crop_area: tuple[float, float],
    flip_ratio: float,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    short_side_jitter: tuple[int, int] | None = None,
) -> Compose:
    """The training augmentation on a ``(C, T, H, W)`` clip; draws from torch's global RNG.

    By default the seed's RandomResizedCrop (``crop_area`` of the frame, taken from the decoded
    frames and resized once, see the module docstring); with ``short_side_jitter=(min, max)``
    PySlowFast's scale jitter and a random ``crop_size`` crop instead.
    """
    if short_side_jitter:
        crop = [RandomShortSideScale(*short_side_jitter), RandomCrop(crop_size)]
    else:
        crop = [RandomResizedCrop(target_height=crop_size, target_width=crop_size, scale=crop_area,
                                  aspect_ratio=(3 / 4, 4 / 3))]
    return Compose(
        [
            *crop,
            RandomHorizontalFlip(flip_ratio),  # flips the last (W) dimension
            Normalize(mean, std, inplace=True),  # the resize made a fresh tensor
        ]
    )


def val_transform(*, short_side: int, crop_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """The seed's validation transform: short-side resize then a centre crop."""
    return Compose([ShortSideScale(short_side), CenterCrop(crop_size), Normalize(mean, std)])


def pack_pathway(frames: torch.Tensor, alpha: int) -> list[torch.Tensor]:
    """Split a ``(C, T, H, W)`` clip into ``[slow, fast]``.

    The fast pathway keeps all ``T`` frames; the slow one keeps every ``alpha``-th frame from
    the first (``x[:, ::alpha]``, mmaction2's choice: frames 0, 8, 16, 24 of 32 at alpha 8).
    """
    if frames.shape[1] % alpha:
        raise ValueError(f"clip_len ({frames.shape[1]}) must be a multiple of the model's alpha ({alpha})")
    return [frames[:, ::alpha], frames]
