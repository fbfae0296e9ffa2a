"""Videos from a Hugging Face ``datasets`` dataset: ``load_hf_dataset`` and ``HFVideoIndex``.

    splits = load_hf_dataset("data/ucf101_hf")     # a videofolder tree, Parquet shards or a save_to_disk folder
    splits = load_hf_dataset("you/ucf101-subset")  # a Hub id, read from the local cache (HF_HUB_OFFLINE=1)
    index = HFVideoIndex(splits, "data/ucf101_hf", "train")               # columns "video" and "label"
    with index.open(3, decoder="fast") as video: video.get_frames(np.arange(8))
    accel-slowfast train --dataset=hf --hf_dataset=data/ucf101_hf --hf_val_split=test --num_classes=101

A ``Video`` column stores each video as ``{"bytes", "path"}``: its encoded bytes (Parquet shards
and ``save_to_disk`` folders usually embed them) or the path of a file (``videofolder``). The
index reads that storage itself, never datasets' decoded ``VideoDecoder``, and hands the bytes to
our decoders straight from memory, so the decoders and their frames are the same as for files.

Rows stay in datasets' memory-mapped Arrow file: the index holds that table, the int32 labels and
nothing per video (``paths`` are names made on access, ``<hf_dataset>:<split>[row]``, which
messages and ``bad_videos.txt`` show). Forked data-loader workers share the mapped pages; a
spawned one (macOS, Windows) gets the table by its file name, as datasets pickles it.

The probe cache is keyed by the dataset's fingerprint (datasets changes it when the data does),
the split and the two columns. A video stored as a path is assumed unchanged while that
fingerprint is: after editing such files in place, probe again by deleting the cache.
"""

import hashlib
import operator
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow.compute as pc
import torch

from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.streams import probe_video
from accel_slowfast.errors import DataError
from accel_slowfast.recipe.data import DEFAULT_DECODER

HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
FORMS = ("a videofolder tree, a folder of Parquet shards named by split, a save_to_disk folder, "
         "or a Hub id load_dataset has cached (read offline with HF_HUB_OFFLINE=1)")


def load_hf_dataset(name: str) -> datasets.DatasetDict:
    """The splits of ``name``: a ``save_to_disk`` folder (``load_from_disk``), another folder or a Hub
    id (``load_dataset``: a ``videofolder`` tree, Parquet shards, a dataset in the local cache).

    Raises:
        DataError: ``name`` cannot be opened, or holds a single split with no split names.
    """
    path = Path(name)
    if not path.exists() and not HUB_ID.fullmatch(name):
        raise DataError(f"hf_dataset {name!r}: no such folder, and not a Hub id; give {FORMS}")
    try:
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            splits = datasets.load_from_disk(name)  # memory-maps the saved Arrow files
        else:
            splits = datasets.load_dataset(name)  # prepares its Arrow cache once, in HF_DATASETS_CACHE
    except Exception as error:  # noqa: BLE001 - datasets raises many kinds; the user needs the reason
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"hf_dataset {name!r} cannot be opened ({type(error).__name__}: {reason}); give {FORMS}"
                        ) from None
    if isinstance(splits, datasets.Dataset):
        raise DataError(f"hf_dataset {name!r} holds one unnamed split; save a DatasetDict instead: "
                        "DatasetDict(train=..., validation=...).save_to_disk(...)")
    return splits


class RowNames(Sequence[str]):
    """``<prefix>[row]`` for rows ``0 .. length-1``, made on access (an index keeps no string per video)."""

    def __init__(self, prefix: str, length: int):
        self.prefix, self.length = prefix, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.length))]
        i = operator.index(i)
        if not -self.length <= i < self.length:
            raise IndexError(f"row {i} out of range for {self.length} rows")
        return f"{self.prefix}[{i % self.length}]"

    def __iter__(self) -> Iterator[str]:
        return (f"{self.prefix}[{i}]" for i in range(self.length))


class HFVideoIndex(VideoIndex):
    """The videos of one split of a ``datasets`` dataset, read from its memory-mapped Arrow table.

    Args:
        splits: the dataset's splits (``load_hf_dataset``).
        name: the ``hf_dataset`` it was opened from, named in messages and in ``paths``.
        split: the split to read.
        video_column: a ``Video`` column.
        label_column: a ``ClassLabel`` column (its names are the classes) or an integer one.
        classes: the class names, when another split (the training one) fixes them already.

    Raises:
        DataError: no such split or column, a label column that holds no class ids, or rows without a label.
    """

    def __init__(self, splits: datasets.DatasetDict, name: str, split: str, video_column: str = "video",
                 label_column: str = "label", classes: list[str] | None = None):
        source = f"{name}:{split}"
        if split not in splits:
            raise DataError(f"hf_dataset {name!r} has no split {split!r} (it has: {', '.join(splits)}); "
                            f"set --hf_train_split / --hf_val_split to one of them")
        dataset = splits[split]
        for key, column in (("hf_video_column", video_column), ("hf_label_column", label_column)):
            if column not in dataset.features:
                raise DataError(f"{source} has no column {column!r} (it has: {', '.join(dataset.features)}); "
                                f"set --{key}")
        if not isinstance(dataset.features[video_column], datasets.Video):
            raise DataError(f"{source}: column {video_column!r} holds {dataset.features[video_column]}, not videos; "
                            f"cast it: dataset.cast_column({video_column!r}, datasets.Video())")
        self.classes = self._classes(dataset, source, label_column, classes)
        # load_hf_dataset's splits have no indices mapping (select/shuffle leave one): row i of the table is row i
        self._table, self._video_column = dataset.data, video_column
        labels = pc.fill_null(dataset.data.column(label_column), -1).to_numpy()
        self.labels = labels.astype(np.int32)
        self._check_labels(source, label_column)
        self.paths, self.missing, self.source = RowNames(source, len(dataset)), [], source
        # datasets' own fingerprint (no public accessor): it changes with the split's content
        self._fingerprint = f"{dataset._fingerprint}:{split}:{video_column}:{label_column}"

    @staticmethod
    def _classes(dataset: datasets.Dataset, source: str, column: str, classes: list[str] | None) -> list[str]:
        feature = dataset.features[column]
        if isinstance(feature, datasets.ClassLabel):
            if classes is not None and feature.names != classes:
                raise DataError(f"{source}: column {column!r} names other classes than the training split "
                                f"({len(feature.names)} against {len(classes)}); use splits of one dataset")
            return list(feature.names)
        if not (isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))):
            raise DataError(f"{source}: column {column!r} holds {feature}, not class ids; encode it: "
                            f"dataset.class_encode_column({column!r}), or set --hf_label_column")
        if classes is not None:
            return classes
        top = pc.max(dataset.data.column(column)).as_py()
        return [str(i) for i in range(-1 if top is None else top + 1)]

    def _check_labels(self, source: str, column: str) -> None:
        unlabelled = np.flatnonzero(self.labels < 0)
        if unlabelled.size:
            raise DataError(f"{source}: {unlabelled.size} rows have no label in column {column!r} (first: row "
                            f"{unlabelled[0]}); use a labelled split")
        beyond = np.flatnonzero(self.labels >= len(self.classes))
        if beyond.size:
            raise DataError(f"{source}: row {beyond[0]} has label {self.labels[beyond[0]]}, but the training split "
                            f"has labels 0..{len(self.classes) - 1} only")

    def _video(self, i: int) -> memoryview | str:
        """Row ``i``'s video: its bytes (a view of the mapped file), else its path; empty bytes when neither."""
        row = self._table.column(self._video_column)[i]  # one StructScalar: {"bytes", "path"}
        if row.is_valid and row["bytes"].is_valid:
            return memoryview(row["bytes"].as_buffer())
        if row.is_valid and row["path"].is_valid:
            return row["path"].as_py()
        return memoryview(b"")  # a row without a video: the probe reports it empty, decoding fails

    def open(self, i: int, decoder: str = DEFAULT_DECODER, device: str | torch.device = "cpu"):
        return open_video(self._video(i), decoder, device)

    def probe(self, i: int) -> dict:
        return probe_video(self._video(i))

    def fingerprint(self) -> str:
        return hashlib.sha1(self._fingerprint.encode()).hexdigest()
