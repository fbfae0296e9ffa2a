"""The data side of the multi-view test protocol (mmaction2's test sampling): which clips, which crops.

    10 clips spread uniformly over the video x 3 crops (left/centre/right or top/centre/bottom)
    of test_crop_size after a short-side resize = 30 views per video. How a video's views are
    averaged into its score is ``accel_slowfast.evaluation.metrics.aggregate_views``.
"""

import numpy as np
from torchvision.transforms import Compose

from accel_slowfast.data.transforms import ShortSideScale, ToChannelsFirst, UniformCrop


def uniform_clip_offsets(num_frames: int, span: int, num_clips: int) -> np.ndarray:
    """Start frames of ``num_clips`` clips of ``span`` frames, mmaction2's test sampling.

    Clip ``i`` starts at ``int(avg / 2 + i * avg)`` with ``avg = (num_frames - span + 1) / num_clips``;
    a video shorter than one span starts every clip at 0 (and the clip loops).
    """
    if num_frames > span - 1:
        average = (num_frames - span + 1) / num_clips
        return (average / 2 + np.arange(num_clips) * average).astype(int)
    return np.zeros(num_clips, dtype=int)


def view_transforms(*, short_side: int, crop_size: int, num_crops: int) -> list[Compose]:
    """One transform per spatial view of a uint8 ``(T, H, W, C)`` clip: short-side resize, crop
    ``k`` of ``num_crops`` (1: the centre; 3: start, centre and end of the long side)."""
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    positions = [1] if num_crops == 1 else [0, 1, 2]
    return [Compose([ShortSideScale(short_side), UniformCrop(crop_size, k), ToChannelsFirst()]) for k in positions]

