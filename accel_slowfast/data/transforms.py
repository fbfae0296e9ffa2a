"""Clip transforms: decoded uint8 frames in, a uint8 ``(C, T, H, W)`` clip out.

Decoders return a clip as uint8 ``(T, H, W, C)`` RGB, the layout FFmpeg converts to. Every
transform crops (a view) and resizes in uint8, through torch's vectorised bilinear kernel for
channels-last uint8 images, and ends with a ``(C, T, H, W)`` view. Normalization is the model's
first step, on its device (``models.SlowFast``, like mmaction2 1.x's data preprocessor): a
uint8 clip is a quarter of the float one to pass between processes and to the GPU, and
normalizing a 32-frame float clip on the CPU cost a third as much as decoding it
(docs/PERFORMANCE.md). Resizing in uint8 rounds each resampled pixel to an integer level
(within one level of the float result). The pipelines follow the seed recipe (mmaction2's SlowFast
R50 4x16x1):

    train: RandomResizedCrop(area, aspect 3/4-4/3) to crop_size² -> flip
           or, with short_side_jitter (PySlowFast's): random short side in [min, max] ->
           random crop_size² crop -> flip; then, if asked, RandAugment -> random erasing
           (``augment.py``)
    val:   short side -> centre crop crop_size²
    test:  short side -> crop k of num_crops (``views.view_transforms``)

The seed resizes the short side to 256 before its RandomResizedCrop. A crop drawn as a
fraction of the frame's area with a given aspect ratio is the same region at any scale, so
training crops the decoded frames directly and resizes once: the same distribution of views,
one resampling instead of two.

Random parameters come from torch's global RNG, drawn as pytorchvideo's ``RandomResizedCrop``
and ``RandomShortSideScale`` and torchvision's ``RandomCrop`` and ``RandomHorizontalFlip`` draw
them (``ClipDataset`` seeds that RNG per sample).
"""

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from accel_slowfast import compat  # noqa: F401  (before pytorchvideo.transforms: the torchvision module it needs)

# isort: split
from pytorchvideo.transforms.functional import _get_param_spatial_crop
from torchvision.transforms import Compose


def resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``, as pytorchvideo and mmaction2) of uint8 ``(T, H, W, C)``."""
    if frames.shape[1:3] == (height, width):
        return frames
    images = frames.permute(0, 3, 1, 2)
    if frames.device.type == "cpu":
        resized = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    else:  # NVDEC's clips, on a GPU: CUDA's bilinear kernel takes no uint8, so resize in float and round
        resized = F.interpolate(images.float(), size=(height, width), mode="bilinear", align_corners=False)
        resized = resized.round_().clamp_(0, 255).to(torch.uint8)
    return resized.permute(0, 2, 3, 1)  # the kernel writes channels-last: a free view back to (T, H, W, C)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` with the short side at ``short_side`` and the aspect kept (pytorchvideo's rounding)."""
    if width < height:
        return int(math.floor(height / width * short_side)), short_side
    return short_side, int(math.floor(width / height * short_side))


def crop(frames: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A view of the ``height`` x ``width`` window at ``(top, left)`` of every frame."""
    if not (0 <= top and 0 <= left and top + height <= frames.shape[1] and left + width <= frames.shape[2]):
        raise ValueError(f"a {height}x{width} crop at ({top}, {left}) does not fit "
                         f"{frames.shape[1]}x{frames.shape[2]} frames")
    return frames[:, top:top + height, left:left + width]


class ShortSideScale:
    """Resize so the short side is ``size``."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return resize(frames, *short_side_size(frames.shape[1], frames.shape[2], self.size))


class UniformCrop:
    """A ``size``² crop at ``position`` 0, 1 or 2 (start, centre, end) of the long side, centred
    on the short side: pytorchvideo's ``uniform_crop`` offsets. ``position=1`` is the centre crop."""

    def __init__(self, size: int, position: int = 1):
        if position not in (0, 1, 2):
            raise ValueError(f"position must be 0, 1 or 2, got {position}")
        self.size, self.position = size, position

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[1:3]
        top, left = math.ceil((height - self.size) / 2), math.ceil((width - self.size) / 2)
        if self.position != 1 and height > width:
            top = 0 if self.position == 0 else height - self.size
        elif self.position != 1:
            left = 0 if self.position == 0 else width - self.size
        return crop(frames, top, left, self.size, self.size)


class RandomResizedCrop:
    """Inception-style crop: ``area`` of the frame, aspect in ``aspect``, resized to ``size``²."""

    def __init__(self, size: int, area: tuple[float, float], aspect: tuple[float, float] = (3 / 4, 4 / 3)):
        self.size, self.area, self.aspect = size, tuple(area), tuple(aspect)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        top, left, height, width = _get_param_spatial_crop(self.area, self.aspect, frames.shape[1], frames.shape[2])
        return resize(crop(frames, top, left, height, width), self.size, self.size)


class RandomShortSideCrop:
    """PySlowFast's scale jitter: short side uniform in ``[min_size, max_size]``, then a random
    ``size``² crop."""

    def __init__(self, min_size: int, max_size: int, size: int):
        self.min_size, self.max_size, self.size = min_size, max_size, size

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        short_side = int(torch.randint(self.min_size, self.max_size + 1, (1,)))
        frames = resize(frames, *short_side_size(frames.shape[1], frames.shape[2], short_side))
        top = int(torch.randint(0, frames.shape[1] - self.size + 1, (1,)))
        left = int(torch.randint(0, frames.shape[2] - self.size + 1, (1,)))
        return crop(frames, top, left, self.size, self.size)


class RandomHorizontalFlip:
    """Mirror every frame with probability ``p`` (one draw per clip, made even when ``p`` is 0)."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.flip(2) if torch.rand(1) < self.p else frames


class ToChannelsFirst:
    """uint8 ``(T, H, W, C)`` -> uint8 ``(C, T, H, W)``, the model's layout (a view: the batch's
    collation copies it). The model normalizes on its own device (``models.SlowFast``)."""

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype != torch.uint8:
            raise TypeError(f"expected uint8 (T, H, W, C) frames from a decoder, got {frames.dtype}")
        return frames.permute(3, 0, 1, 2)


def train_transform(
    *,
    crop_size: int,
    crop_area: tuple[float, float],
    flip_ratio: float,
    short_side_jitter: tuple[int, int] | None = None,
    augment: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
) -> Compose:
    """The training augmentation of a uint8 ``(T, H, W, C)`` clip; draws from torch's global RNG.

    By default the seed's RandomResizedCrop (``crop_area`` of the frame, taken from the decoded
    frames and resized once, see the module docstring); with ``short_side_jitter=(min, max)``
    PySlowFast's scale jitter and a random ``crop_size`` crop instead. ``augment``: uint8 to uint8
    clip transforms applied after the flip (``data/augment.py``'s RandAugment, random erasing).
    """
    if short_side_jitter:
        random_crop = RandomShortSideCrop(*short_side_jitter, crop_size)
    else:
        random_crop = RandomResizedCrop(crop_size, crop_area)
    return Compose([random_crop, RandomHorizontalFlip(flip_ratio), *augment, ToChannelsFirst()])


def val_transform(*, short_side: int, crop_size: int) -> Compose:
    """The seed's validation transform: short-side resize, then a centre crop."""
    return Compose([ShortSideScale(short_side), UniformCrop(crop_size), ToChannelsFirst()])

