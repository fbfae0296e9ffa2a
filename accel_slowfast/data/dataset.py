"""Map-style clip dataset: one view (clip x spatial crop) per ``__getitem__``.

A sample is the dict the data package's docstring describes (``accel_slowfast/data/__init__.py``:
``video`` is one uint8 ``(C, T, H, W)`` clip, with its label and indices); a repeated item
(``num_repeats`` N > 1, training only) is a list of N of them from one opening and one decode of
the video, each with its own augmentation, and its own random position unless ``sample_once``
(then every repeat transforms the same frames).

``ClipDataset.collate`` (the loaders' ``collate_fn``) holds a batch in two storages instead of
six: the stacked clips and one int64 tensor whose rows the five ``(B,)`` entries view. A
data-loader worker hands each storage to the main process separately (``share_by_filename``;
docs/PERFORMANCE.md has the costs), so fewer is cheaper; there the clips are stacked into shared
memory directly (moving a stacked batch there was a second copy of every clip: ~3 of the ~23 CPU
ms a 32x224² clip cost one worker).

A multigrid run's training loader (``data/multigrid_sampler.py``) asks for
``dataset[(index, clip_len, frame_interval, crop_size)]``: sample ``index`` at that shape, its
transform built by ``transform_for_crop``; every other key stays the same.

Sampling (``clip_sampling``): ``random`` (training: offset uniform over the valid range),
``centre`` (validation) or ``uniform`` (multi-view test, ``num_clips`` clips, see ``views.py``);
videos shorter than a clip loop. Randomness comes from a generator seeded by
``(seed, epoch, index)``, so a sample is the same whatever worker, process or resume point
produces it (a repeated item's N positions and N augmentation seeds are the first N draws of
that generator: its first repeat is the clip ``num_repeats: 1`` gives); ``set_epoch`` is called
through Accelerate's prepared loader every epoch. The epoch is held in shared memory, so
persistent data-loader workers see it change.

Bad videos never stop a run: a view whose video cannot be decoded (corrupt, truncated, empty,
missing, known bad from probing: unreadable, or over the decode budget ``max_decode_pixels``) is
replaced by a clip of another video chosen from the same seed, so every process still yields the
same number of batches. Each bad file is logged once, with its reason, and appended to
``bad_video_log`` (``<work_dir>/bad_videos.txt``).
"""

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.views import uniform_clip_offsets
from accel_slowfast.interrupts import shield_worker
from accel_slowfast.recipe.data import DEFAULT_DECODER

logger = logging.getLogger("accel_slowfast")

CLIP_SAMPLING = ("random", "centre", "uniform")
INDEX_KEYS = ("label", "video_index", "clip_index", "view_index", "replaced")  # the (B,) entries of a batch
MAX_REPLACEMENTS = 20


class ClipDataset(torch.utils.data.Dataset):
    """Views of ``clip_len`` frames taken every ``frame_interval`` frames from indexed videos.

    Args:
        index: the videos and labels.
        clip_len: frames per clip.
        frame_interval: source frames between two sampled frames.
        transforms: one transform per spatial crop, from a decoder's uint8 ``(T, H, W, C)``
            frames to a uint8 ``(C, T, H, W)`` clip (training and validation: one).
        clip_sampling: ``random``, ``centre`` or ``uniform``.
        num_clips: temporal clips per video (``uniform`` only).
        seed: base of the per-sample random generator.
        decoder: a name in ``accel_slowfast.data.decoding.DECODERS``.
        device: where clips are decoded and returned: the CPU, or a CUDA device (decoder
            ``torchcodec``, NVDEC; in the main process, ``num_workers=0``). A video NVDEC cannot
            take is decoded on the CPU and moved there; the reason is logged once per video.
        known_bad: ``{video_index: reason}`` found before training (e.g. by probing).
        bad_video_log: file that lists each bad video once (shared by processes and workers).
        transform_for_crop: builds the training transform for a crop side: multigrid's keys
            ``(index, clip_len, frame_interval, crop_size)`` take a sample at that shape.
        num_repeats: clips per item from one decode (``random`` sampling only); above 1 an item
            is a list of that many sample dicts.
        sample_once: every repeat takes the same frames (one random position), only the
            augmentations differ; otherwise each repeat draws its own position.
    """

    def __init__(
        self,
        index: VideoIndex,
        *,
        clip_len: int,
        frame_interval: int,
        transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        clip_sampling: str = "random",
        num_clips: int = 1,
        seed: int = 0,
        decoder: str = DEFAULT_DECODER,
        device: str | torch.device = "cpu",
        known_bad: dict[int, str] | None = None,
        bad_video_log: str | Path | None = None,
        transform_for_crop: Callable[[int], Callable[[torch.Tensor], torch.Tensor]] | None = None,
        num_repeats: int = 1,
        sample_once: bool = False,
    ):
        if clip_sampling not in CLIP_SAMPLING:
            raise ValueError(f"clip_sampling must be one of {CLIP_SAMPLING}, got {clip_sampling!r}")
        if num_clips > 1 and clip_sampling != "uniform":
            raise ValueError("num_clips > 1 needs clip_sampling='uniform'")
        if num_repeats > 1 and clip_sampling != "random":
            raise ValueError("num_repeats > 1 needs clip_sampling='random' (repeats are for training)")
        self.index = index
        self.clip_len, self.frame_interval = clip_len, frame_interval
        self.transforms = list(transforms)
        self.clip_sampling, self.num_clips = clip_sampling, num_clips
        self.seed, self.decoder, self.device = seed, decoder, torch.device(device)
        self.known_bad = dict(known_bad or {})
        self.bad_video_log = Path(bad_video_log) if bad_video_log else None
        self.transform_for_crop = transform_for_crop
        self.num_repeats, self.sample_once = num_repeats, sample_once
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()  # read by persistent workers
        self._reported: set[str] = set()
        self._cpu_decoded: set[str] = set()  # the videos NVDEC could not take (reported once, not retried)
        self._cached: tuple[int, torch.Tensor] | None = None  # the last video's decoded clips

    @property
    def views_per_video(self) -> int:
        return self.num_clips * len(self.transforms)

    def __len__(self) -> int:
        return len(self.index) * self.views_per_video

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, *keys]))

    def __getitem__(self, idx: int | tuple[int, int, int, int]) -> dict | list[dict]:
        clip_len, frame_interval, transform = self.clip_len, self.frame_interval, None
        if isinstance(idx, tuple):  # a multigrid key (data/multigrid_sampler.py): this sample at that shape
            idx, clip_len, frame_interval, crop_size = idx
            transform = self.transform_for_crop(crop_size)
        video_index, view_index = divmod(idx, self.views_per_video)
        clip_index, crop_index = divmod(view_index, len(self.transforms))
        source = video_index
        for attempt in range(MAX_REPLACEMENTS + 1):
            if attempt:  # a deterministic stand-in: the same on every process, worker and resume
                source = int(self._rng(idx, attempt).integers(len(self.index)))
            try:
                clips = self._clips(source, self._rng(idx), clip_len, frame_interval)  # (positions, T, H, W, C)
                break
            except Exception as error:  # noqa: BLE001 - any decoding failure is a bad video
                self._report_bad(source, f"{type(error).__name__}: {error}")
        else:
            raise RuntimeError(f"{MAX_REPLACEMENTS + 1} videos in a row failed to decode around video {video_index} "
                               f"({self.index.paths[video_index]}); see {self.bad_video_log or 'the log'}")
        # repeat r transforms position r (sample_once: the one position, every time); the test's clip_index its clip
        positions = range(self.num_repeats) if len(clips) == self.num_repeats > 1 else [clip_index] * self.num_repeats
        seeds = self._rng(idx).integers(2**63, size=self.num_repeats)
        samples = []
        for position, seed in zip(positions, seeds, strict=True):
            with torch.random.fork_rng(devices=[]):  # the transforms draw from torch's (CPU) RNG
                # The CPU generator only: torch.manual_seed also queues a seed for every GPU backend,
                # recording a stack trace each time (0.8 ms a sample).
                torch.default_generator.manual_seed(int(seed))
                frames = (transform or self.transforms[crop_index])(clips[position])
            samples.append({
                "video": frames,  # (C, T, H, W) uint8
                "label": int(self.index.labels[source]),
                "video_index": video_index,
                "clip_index": clip_index,
                "view_index": view_index,
                "replaced": source != video_index,
            })
        return samples if self.num_repeats > 1 else samples[0]

    def collate(self, samples: list[dict] | list[list[dict]]) -> dict:
        """``default_collate``'s batch of ``samples`` in two storages (see the module docstring);
        a repeated dataset's items are flattened first, each video's clips side by side."""
        if self.num_repeats > 1:
            samples = [sample for repeats in samples for sample in repeats]
        clips = [sample["video"] for sample in samples]
        video = None
        if torch.utils.data.get_worker_info() is not None:  # a loader worker: the batch goes to shared memory
            storage = torch.UntypedStorage._new_shared(len(clips) * clips[0].nbytes)
            video = torch.empty(0, dtype=torch.uint8).set_(storage).view(len(clips), *clips[0].shape)
        video = torch.stack(clips, out=video)  # (B, C, T, H, W) uint8
        index = torch.tensor([[sample[key] for sample in samples] for key in INDEX_KEYS])  # (5, B) int64
        batch = {"video": video}
        batch.update(zip(INDEX_KEYS, index, strict=True))
        # a bool view of the 0/1 values: the low-order byte of each int64
        low = 0 if sys.byteorder == "little" else index.element_size() - 1
        batch["replaced"] = batch["replaced"].view(torch.uint8)[low::index.element_size()].view(torch.bool)
        return batch

    def frame_indices(self, num_frames: int, rng: np.random.Generator, clip_len: int | None = None,
                      frame_interval: int | None = None) -> np.ndarray:
        """Source-frame indices ``(positions, clip_len)``, looping over videos that are too short;
        ``clip_len`` and ``frame_interval`` default to the dataset's. ``positions``: ``num_clips``
        (``uniform``), ``num_repeats`` (``random`` unless ``sample_once``), else 1."""
        clip_len, frame_interval = clip_len or self.clip_len, frame_interval or self.frame_interval
        span = clip_len * frame_interval
        if self.clip_sampling == "random":
            count = 1 if self.sample_once else self.num_repeats
            offsets = rng.integers(0, num_frames - span + 1, size=count) if num_frames > span else np.zeros(count, int)
        elif self.clip_sampling == "centre":
            offsets = np.array([max((num_frames - span) // 2, 0)])
        else:
            offsets = uniform_clip_offsets(num_frames, span, self.num_clips)
        return (offsets[:, None] + np.arange(clip_len) * frame_interval) % num_frames

    def _clips(self, video_index: int, rng: np.random.Generator, clip_len: int | None = None,
               frame_interval: int | None = None) -> torch.Tensor:
        """uint8 frames ``(positions, T, H, W, C)`` of every clip ``frame_indices`` places (the
        dataset's length and interval unless given), decoded in one pass."""
        clip_len = clip_len or self.clip_len
        if video_index in self.known_bad:
            raise RuntimeError(self.known_bad[video_index])
        if self._cached is None or self._cached[0] != video_index or self.clip_sampling == "random":
            path = self.index.paths[video_index]
            device = "cpu" if path in self._cpu_decoded else self.device
            with self.index.open(video_index, self.decoder, device) as video:
                if video.num_frames <= 0:
                    raise RuntimeError("the video has no frames")
                indices = self.frame_indices(video.num_frames, rng, clip_len, frame_interval)  # (positions, clip_len)
                frames = video.get_frames(indices.reshape(-1))  # (positions * clip_len, H, W, C)
                if self.device.type != "cpu" and video.fallback_reason and path not in self._cpu_decoded:
                    self._cpu_decoded.add(path)
                    logger.warning("NVDEC cannot decode %s (%s): decoding it on the CPU", path, video.fallback_reason)
            if frames.shape[0] != indices.size:
                raise RuntimeError(f"decoded {frames.shape[0]} frames, expected {indices.size}")
            self._cached = (video_index, frames.to(self.device))  # a no-op unless NVDEC fell back to the CPU
        frames = self._cached[1]
        return frames.unflatten(0, (-1, clip_len))

    def _report_bad(self, video_index: int, reason: str) -> None:
        path = self.index.paths[video_index]
        if path in self._reported:
            return
        self._reported.add(path)
        if self.bad_video_log is None:
            logger.warning("bad video %s (%s): replaced by another clip", path, reason)
        elif list_bad_videos(self.bad_video_log, {path: reason}):
            logger.warning("bad video %s (%s): replaced by another clip; listed in %s",
                           path, reason, self.bad_video_log)


def init_worker(worker_id: int) -> None:
    """``worker_init_fn`` of every loader: batches by file name, and deaf to stop signals (the main
    process checkpoints and ends the run; ``interrupts.shield_worker``)."""
    share_by_filename(worker_id)
    shield_worker()


def share_by_filename(worker_id: int) -> None:
    """``worker_init_fn``: this data-loader worker hands batches over as named shared-memory files.

    Under PyTorch's default (``file_descriptor``) the main process fetches each storage's file
    descriptor from a helper thread of the worker, one round trip per storage; in a training
    loop that took 1-8 ms a batch (median 4.6), all of it counted in ``data_time``. A file name
    travels inside the batch itself (0.7 ms). Set in the worker only: the main process keeps its
    own strategy, and receives either kind.
    """
    torch.multiprocessing.set_sharing_strategy("file_system")


def list_bad_videos(bad_video_log: str | Path, reasons: dict[str, str]) -> list[str]:
    """Append ``path<TAB>reason`` lines for the paths not listed yet; return those paths.

    Each entry is one line: a path holding a tab, a line break or another control character is
    written as a JSON string (``"v_a\\nb.avi"``), and a reason's line breaks become spaces, so a
    strange file name neither splits its line nor gets listed again by every run.

    Workers and processes share the file: while one reads and appends, ``<file>.lock`` beside it
    holds the others back (``filelock``: the OS's lock on POSIX and Windows alike).
    """
    log_path = Path(bad_video_log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{log_path}.lock"), open(log_path, "a+") as log:
        log.seek(0)
        listed = {line.split("\t", 1)[0] for line in log.read().splitlines()}
        new = [path for path in reasons if _quoted(path) not in listed]
        log.write("".join(f"{_quoted(path)}\t{' '.join(reasons[path].split())}\n" for path in new))
    return new


def _quoted(path: str) -> str:
    """``path`` itself, or as a JSON string when it holds a control character (a tab or line break)."""
    return json.dumps(path) if any(ord(c) < 32 or ord(c) == 127 for c in path) else path
