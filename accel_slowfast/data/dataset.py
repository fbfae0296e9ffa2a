"""Map-style clip dataset: one clip per ``__getitem__``, decoded with pytorchvideo's PyAV decoder.

A sample is a dict (the one contract the rest of the package relies on):

=============== ========================= ==================================================
key             type                      meaning
=============== ========================= ==================================================
``video``       ``[slow, fast]``          ``(C, T/alpha, H, W)`` and ``(C, T, H, W)`` float
                                          tensors, normalized; a fresh list per sample
``label``       ``int``                   0-based class id
``video_index`` ``int``                   position of the video in the index
``clip_index``  ``int``                   which clip of the video (0 for train/val sampling)
=============== ========================= ==================================================

After ``torch.utils.data.default_collate`` every entry gains a leading batch dimension
(``video`` stays a two-item list).

Randomness (clip offset, crop, flip) comes from a generator seeded by
``(seed, epoch, index)``, so a sample is the same whatever worker, process or resume point
produces it. ``set_epoch`` is called through Accelerate's prepared loader every epoch.
"""

from collections.abc import Callable

import numpy as np
import torch

from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.transforms import pack_pathway


class ClipDataset(torch.utils.data.Dataset):
    """Clips of ``clip_len`` frames taken every ``frame_interval`` frames from indexed videos.

    Args:
        index: the videos and labels.
        clip_len: frames per clip (the fast pathway's length).
        frame_interval: source frames between two sampled frames.
        transform: clip transform on float ``(C, T, H, W)`` 0-255 frames.
        alpha: the model's slow/fast frame-rate ratio.
        random_clip: a uniformly random clip offset (training) instead of the centre clip.
        seed: base of the per-sample random generator.
        decoder: a name in ``accel_slowfast.data.decoding.DECODERS``.
    """

    def __init__(
        self,
        index: VideoIndex,
        *,
        clip_len: int,
        frame_interval: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
        alpha: int,
        random_clip: bool,
        seed: int = 0,
        decoder: str = "pyav",
    ):
        self.index = index
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.transform = transform
        self.alpha = alpha
        self.random_clip = random_clip
        self.seed = seed
        self.decoder = decoder
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, idx: int) -> dict:
        record = self.index.records[idx]
        sample_seed = int(np.random.SeedSequence([self.seed, self.epoch, idx]).generate_state(1)[0])
        frames = self.decode(record.path, np.random.default_rng(sample_seed))
        with torch.random.fork_rng(devices=[]):  # pytorchvideo/torchvision transforms draw from torch's RNG
            torch.manual_seed(sample_seed)
            frames = self.transform(frames)
        return {"video": pack_pathway(frames, self.alpha), "label": record.label, "video_index": idx, "clip_index": 0}

    def frame_indices(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Source-frame indices of one clip, looping over the video when it is too short."""
        span = self.clip_len * self.frame_interval
        if self.random_clip:
            offset = int(rng.integers(0, num_frames - span + 1)) if num_frames > span else 0
        else:
            offset = max((num_frames - span) // 2, 0)
        return (offset + np.arange(self.clip_len) * self.frame_interval) % num_frames

    def decode(self, path, rng: np.random.Generator) -> torch.Tensor:
        """Decode the frames of one clip of ``path`` as float ``(C, T, H, W)`` in 0-255."""
        with open_video(path, self.decoder) as video:
            if video.num_frames <= 0:
                raise RuntimeError(f"{path}: the video has no frames")
            return video.get_frames(self.frame_indices(video.num_frames, rng))
