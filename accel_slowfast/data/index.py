"""The videos of a split, held compactly: ``VideoIndex`` and its checks.

    index.paths[3], index.labels[3], index.classes, len(index)     # what readers.py returns
    index.records[3].path, index.records[3].label                 # a VideoRecord, built on access
    with index.open(3, decoder="fast") as video: video.get_frames(np.arange(8))  # what the dataset decodes

An index holds its paths in one byte buffer and its labels in one int32 array, not one Python
object per video: data-loader workers are forked from the training process, and every Python
object a worker reads has its reference count written, which copies the page it lives on. With
Kinetics' 650k videos that grew each worker by the whole index over an epoch; numpy arrays are
only read, so the workers keep sharing them. ``records`` builds a ``VideoRecord`` on access.
"""


import hashlib
import logging
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.streams import probe_video
from accel_slowfast.errors import DataError
from accel_slowfast.recipe.data import DEFAULT_DECODER

logger = logging.getLogger(__name__)

SHOWN = 5  # examples a message lists


@dataclass(frozen=True)
class VideoRecord:
    """One video of an index: an absolute-or-root-relative ``path`` and a 0-based ``label``."""

    path: Path
    label: int


class PackedStrings(Sequence[str]):
    """Strings held in one uint8 ``buffer``, the i-th between ``offsets[i]`` and ``offsets[i + 1]``."""

    def __init__(self, strings: Iterable[str]):
        encoded = [string.encode() for string in strings]
        self.offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(encoded), np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} strings")
        i %= len(self)
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()

    def __iter__(self) -> Iterator[str]:
        data, bounds = self.buffer.tobytes(), self.offsets.tolist()
        return (data[start:end].decode() for start, end in zip(bounds[:-1], bounds[1:], strict=True))


class _Records(Sequence[VideoRecord]):
    """``VideoIndex.records``: a read-only view that builds each ``VideoRecord`` when asked for it."""

    def __init__(self, paths: PackedStrings, labels: np.ndarray):
        self._paths, self._labels = paths, labels

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return VideoRecord(Path(self._paths[i]), int(self._labels[i]))

    def __iter__(self) -> Iterator[VideoRecord]:
        return (VideoRecord(Path(path), label) for path, label in zip(self._paths, self._labels.tolist(), strict=True))


class VideoIndex:
    """The videos of one split: ``paths`` (str) and int32 ``labels`` in file order, ``classes`` by label.

    Args:
        records: the videos (the readers use ``from_paths``, which needs no record per video).
        classes: class names, by label.
        missing: listed files that do not exist, left out of the index.
        source: the list file or folder the index was read from, named in messages.
    """

    def __init__(self, records: Iterable[VideoRecord], classes: list[str], missing: list[Path] | None = None,
                 source: str = ""):
        records = list(records)
        self._set([str(r.path) for r in records], [r.label for r in records], classes, missing, source)

    @classmethod
    def from_paths(cls, paths: Sequence[str], labels: Sequence[int], classes: list[str],
                   missing: list[Path] | None = None, source: str = "") -> "VideoIndex":
        index = cls.__new__(cls)
        index._set(paths, labels, classes, missing, source)
        return index

    def _set(self, paths, labels, classes, missing, source) -> None:
        self.paths = PackedStrings(paths)
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        self.classes, self.missing, self.source = list(classes), list(missing or []), source

    @property
    def records(self) -> Sequence[VideoRecord]:
        return _Records(self.paths, self.labels)

    def __len__(self) -> int:
        return len(self.paths)

    # How a source reads its videos. A source that is not a file per video (frame folders, rows of a
    # table) subclasses VideoIndex and overrides these three, and the dataset, the probe and its cache
    # take it as they take files.

    def open(self, i: int, decoder: str = DEFAULT_DECODER, device: str | torch.device = "cpu"):
        """Video ``i`` ready to decode (``num_frames``, ``fps``, ``get_frames``); a context manager."""
        return open_video(self.paths[i], decoder, device)

    def probe(self, i: int) -> dict:
        """Video ``i``'s metadata as the probe caches it (``streams.probe_video``'s columns)."""
        return probe_video(self.paths[i])

    def fingerprint(self) -> str:
        """A digest of every path, label, size and modification time (-1 for a file that is gone):
        it changes when a video is added, relabelled, replaced or edited."""
        stats = np.full((len(self), 2), -1, np.int64)  # (N, [size, mtime_ns])
        for i, path in enumerate(self.paths):
            try:
                stat = os.stat(path)
                stats[i] = stat.st_size, stat.st_mtime_ns
            except OSError:
                pass
        digest = hashlib.sha1()
        for array in (self.paths.offsets, self.paths.buffer, self.labels.astype(np.int64), stats):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def require_videos(index: VideoIndex) -> VideoIndex:
    """``index`` itself, or a ``DataError`` naming its source when it holds no video."""
    if len(index):
        return index
    if index.missing:
        shown = ", ".join(str(path) for path in index.missing[:3])
        raise DataError(f"{index.source}: all {len(index.missing)} listed videos are missing (first: {shown}); "
                        "check data_root")
    raise DataError(f"{index.source} gives no videos; check that it is the right file or folder")


def check_splits(train: VideoIndex, val: VideoIndex) -> None:
    """Every validation label must have training videos (``DataError``); videos in both sets are reported."""
    untrained = ~np.isin(val.labels, train.labels)
    if untrained.any():
        first = int(np.flatnonzero(untrained)[0])
        label = int(val.labels[first])
        name = "" if val.classes[label] == str(label) else f" {val.classes[label]!r}"
        raise DataError(f"{val.source}: {int(untrained.sum())} validation videos have a label no training video has "
                        f"(first: {val.paths[first]}, label {label}{name}); {train.source} has videos of "
                        f"{len(np.unique(train.labels))} of its {len(train.classes)} classes")
    both = set(val.paths).intersection(train.paths)
    if both:
        shown = ", ".join([path for path in val.paths if path in both][:SHOWN])
        logger.warning("%d videos are in both the training set (%s) and the validation set (%s), which inflates "
                       "validation accuracy (first: %s)", len(both), train.source, val.source, shown)


