"""Per-clip regularisation of uint8 ``(T, H, W, C)`` clips, in the loader workers: RandAugment and
random erasing (``rand_augment``, ``random_erasing``; the batch-level MixUp/CutMix are ``engine/mixing.py``'s).

    train_transform(..., augment=[RandAugment(magnitude=7, layers=4, fill=mean), RandomErasing(0.25, mean, std)])

Both take the clip uint8 and return it uint8, after the crop and the flip (``transforms.train_transform``).
PySlowFast and mmaction2 apply RandAugment before their crop, on frames of short side ~256; here
the crop is taken from the decoded frames directly (``transforms.py``), so RandAugment runs on the
crop, at about the pixel count they augment, whatever the videos' resolution. Its geometric
operations then fill the uncovered corners inside the view rather than partly outside it.

Random parameters come from torch's global RNG, which ``ClipDataset`` seeds per sample: a clip
gets the same augmentation on any worker, process or resumed run.
"""

import torch

from accel_slowfast import compat  # noqa: F401  (before pytorchvideo.transforms: the torchvision module it needs)

# isort: split
import pytorchvideo.transforms
from torchvision.transforms import RandomErasing as _TorchvisionErasing

ERASED_AREA = (0.02, 1 / 3)  # PySlowFast's (timm's) box: fraction of the frame
ERASED_ASPECT = (0.3, 1 / 0.3)


class RandAugment:
    """pytorchvideo's RandAugment: ``layers`` of its 14 operations (colour, contrast, posterize,
    rotate, shear, translate, ...: those of PySlowFast's increasing-magnitude set less SolarizeAdd,
    on pytorchvideo's scales), each applied with probability 0.5 at a magnitude drawn from
    N(``magnitude``, 0.5) within [0, 10], the same on every frame; unlike PySlowFast's, the
    operations are drawn without replacement. Geometric operations fill with ``fill`` (RGB, 0-255):
    the recipe's mean, which normalizes to 0 (PySlowFast fills with grey 128; pytorchvideo's default
    fill, 0.5, is black in a uint8 clip)."""

    def __init__(self, magnitude: int, layers: int, fill: tuple[float, float, float]):
        self._augment = pytorchvideo.transforms.RandAugment(magnitude=magnitude, num_layers=layers,
                                                            transform_hparas={"fill": tuple(fill)})

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        # pytorchvideo's layout is (T, C, H, W): views there and back
        return self._augment(frames.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class RandomErasing:
    """With probability ``p``, one box (area and aspect as PySlowFast's) at the same place in every
    frame, filled with per-pixel noise ``mean + std * N(0, 1)`` rounded into 0..255.

    PySlowFast erases after normalizing, with N(0, 1) noise ('pixel' mode); in the uint8 clip the
    model normalizes with ``mean`` and ``std`` that is the same noise, up to the rounding and to
    values beyond 0..255 (about 3 in 100 at the ImageNet mean and std). mmaction2's ``mode='rand'`` fills with uniform
    0..255 values instead. The box comes from torchvision's ``RandomErasing.get_params`` (10 tries;
    when no box fits, nothing is erased).
    """

    def __init__(self, p: float, mean: tuple[float, float, float], std: tuple[float, float, float]):
        self.p = p
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if not torch.rand(1) < self.p:
            return frames
        num_frames, height, width, channels = frames.shape
        top, left, box_h, box_w, _ = _TorchvisionErasing.get_params(
            frames.permute(0, 3, 1, 2), scale=ERASED_AREA, ratio=ERASED_ASPECT, value=[0])
        if (box_h, box_w) == (height, width):  # get_params' answer when no box fitted
            return frames
        noise = torch.randn(num_frames, box_h, box_w, channels) * self.std + self.mean  # (T, h, w, C)
        frames = frames.clone()  # it may be a view of the decoded frames
        frames[:, top:top + box_h, left:left + box_w] = noise.round_().clamp_(0, 255).to(torch.uint8)
        return frames
