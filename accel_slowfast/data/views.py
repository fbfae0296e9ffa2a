"""The multi-view test protocol (REFERENCE.md §1): which clips, which crops, how views are averaged.

    10 clips spread uniformly over the video x 3 crops (left/centre/right or top/centre/bottom)
    of test_crop_size after a short-side resize = 30 views per video; per-video scores are the
    mean of the views' softmax (``prob``, the seed's choice) or of their logits (``score``).
"""

import numpy as np
from torchvision.transforms import Compose

from accel_slowfast.config import AVERAGE_CLIPS
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


def aggregate_views(
    scores: np.ndarray, video_index: np.ndarray, failed: np.ndarray, average_clips: str = "prob"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-video scores from per-view ``scores`` ``(V, num_classes)`` (gathered from every process).

    Returns ``(videos, video_scores, failed_videos)``: the sorted ids of the videos scored, their
    averaged scores ``(N, num_classes)``, and the ids of videos with any view that failed to
    decode (those are not scored: a replacement clip must never stand in for a test video).
    """
    if average_clips not in AVERAGE_CLIPS:
        raise ValueError(f"average_clips must be one of {AVERAGE_CLIPS}, got {average_clips!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if average_clips == "prob":
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    failed_videos = np.unique(video_index[np.asarray(failed, dtype=bool)])
    videos = np.setdiff1d(np.unique(video_index), failed_videos)
    video_scores = np.stack([scores[video_index == v].mean(axis=0) for v in videos]) if len(videos) else \
        np.zeros((0, scores.shape[1]))
    return videos, video_scores, failed_videos
