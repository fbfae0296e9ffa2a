"""Frame folders, as mmaction2's ``RawframeDataset`` reads them: an index whose videos are folders of JPEGs.

    index = read_rawframe_list("data/ucf101/ucf101_train_split_1_rawframes.txt", "data/ucf101/rawframes")
    with index.open(0) as video:
        frames = video.get_frames(np.arange(0, 32, 2))      # uint8 (16, H, W, 3) RGB
    accel-slowfast train --dataset=rawframes --data_root=data/ucf101/rawframes \\
        --train_list=data/ucf101/ucf101_train_split_1_rawframes.txt \\
        --val_list=data/ucf101/ucf101_val_split_1_rawframes.txt

A folder (``rawframes/<Class>/<video>/img_00001.jpg ...``, from ``build_rawframes.py``) is read as
``RawframeDataset`` reads it: sampled frame ``i`` is the file ``filename_tmpl.format(i + start_index
+ offset)`` (defaults ``img_{:05}.jpg`` and 1; ``offset`` from a with_offset list), and the folder
has ``total_frames`` frames as its list says (the official UCF101/HMDB51 splits say nothing: the
frames present from the first one on are counted). ``FrameFolderIndex`` is a ``VideoIndex``, so the
clip dataset samples a folder exactly as it samples the video its frames came from, and the probe,
its cache, ``data check``, ``test`` and ``predict`` take it unchanged. A missing folder, a missing
frame, fewer frames than ``total_frames`` or a frame that does not decode makes the folder a bad
video: listed in ``bad_videos.txt`` with the reason, its clip replaced.

Frames are RGB, as mmcv reads them (``channel_order='rgb'``), decoded by simplejpeg (libjpeg-turbo;
a file that is not a JPEG, such as a PNG, by Pillow). The candidates, one thread, 350 quality-95
320x240 frames written as ``build_rawframes.py`` writes them, file read included
(``python bench/jpeg_decoders.py``): simplejpeg 766 us a frame, OpenCV (mmcv's default backend) 882,
``torchvision.io.decode_jpeg`` 961, Pillow 1021, all four bitwise the same pixels. simplejpeg is the
fastest by 13-25% and a small wheel; OpenCV's wheel is ~60 MB for a slower decode.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
import simplejpeg
import torch
from PIL import Image

from accel_slowfast.data.annotations import check_labels, read_frame_list
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.readers import locate
from accel_slowfast.data.streams import fit
from accel_slowfast.recipe.data import DEFAULT_DECODER

FILENAME_TMPL, START_INDEX = "img_{:05}.jpg", 1  # mmaction2's RawframeDataset defaults
JPEG_START = b"\xff\xd8"


def decode_image(path: str) -> np.ndarray:
    """The uint8 ``(H, W, 3)`` RGB pixels of an image file."""
    with open(path, "rb") as file:
        data = file.read()
    if data[:2] == JPEG_START:
        return simplejpeg.decode_jpeg(data, colorspace="RGB")
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))  # writable, as simplejpeg's arrays are


def count_frames(folder: str, first: int, filename_tmpl: str) -> int:
    """How many frames the folder holds in a row from number ``first`` (one listing of the folder)."""
    names, count = set(os.listdir(folder)), 0
    while filename_tmpl.format(first + count) in names:
        count += 1
    return count


class FrameFolder:
    """One frame folder behind the decoders' interface (``decoding.py``): ``num_frames``, ``get_frames``.

    Args:
        folder: the folder of frames.
        total_frames: the frames it holds (its list's ``total_frames``); -1: count them.
        first: the file number of frame 0 (``start_index + offset``).
        filename_tmpl: a frame's file name, formatted with its number.
    """

    fps = None  # frames carry no rate

    def __init__(self, folder: str, total_frames: int = -1, first: int = START_INDEX,
                 filename_tmpl: str = FILENAME_TMPL):
        self.path, self.first, self.filename_tmpl = str(folder), first, filename_tmpl
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"no frame folder {self.path}")
        self.num_frames = total_frames if total_frames >= 0 else count_frames(self.path, first, filename_tmpl)

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed: each file is decoded once) as uint8 ``(T, H, W, C)``."""
        indices = np.asarray(indices).ravel()
        unique = np.unique(indices)
        decoded, size = [], None
        for i in unique.tolist():
            name = self.filename_tmpl.format(i + self.first)
            try:
                rgb = decode_image(os.path.join(self.path, name))
            except FileNotFoundError:
                raise FileNotFoundError(f"frame {name} is missing ({self.num_frames} frames listed)") from None
            except Exception as error:  # noqa: BLE001 - simplejpeg's and Pillow's errors differ
                raise RuntimeError(f"frame {name} does not decode: {error}") from None
            size = size or rgb.shape[:2]
            decoded.append(fit(rgb, size))  # a frame of another size: resized to the first one's, as videos are
        stacked = torch.from_numpy(np.stack(decoded))  # (U, H, W, C)
        return stacked[torch.from_numpy(np.searchsorted(unique, indices))]

    def close(self) -> None:
        """Nothing stays open between frames."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameFolderIndex(VideoIndex):
    """A ``VideoIndex`` of frame folders: ``paths`` are folders; int32 ``total_frames`` (-1: count the
    folder) and ``offsets`` per folder, numpy arrays as the index's labels are (``index.py``)."""

    @classmethod
    def of(cls, index: VideoIndex, total_frames=None, offsets=None, *, filename_tmpl: str = FILENAME_TMPL,
           start_index: int = START_INDEX) -> "FrameFolderIndex":
        """The folders of ``index`` (its paths, labels, classes, missing and source) read as frame folders."""
        frames = cls.__new__(cls)
        frames.paths, frames.labels = index.paths, index.labels
        frames.classes, frames.missing, frames.source = index.classes, index.missing, index.source
        count = len(index)
        frames.total_frames = np.asarray(np.full(count, -1) if total_frames is None else total_frames, np.int32)
        frames.offsets = np.asarray(np.zeros(count) if offsets is None else offsets, np.int32)
        frames.filename_tmpl, frames.start_index = filename_tmpl, start_index
        return frames

    def open(self, i: int, decoder: str = DEFAULT_DECODER, device: str | torch.device = "cpu") -> FrameFolder:
        """Folder ``i``; ``decoder`` names a video decoder and does not apply, and frames decode on the CPU."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"frame folders decode on the CPU, not {device}")
        return FrameFolder(self.paths[i], int(self.total_frames[i]), self.start_index + int(self.offsets[i]),
                           self.filename_tmpl)

    def probe(self, i: int) -> dict:
        """Folder ``i``'s row for the probe: its frame count and first frame's size, or why it cannot be used."""
        row = {"num_frames": 0, "fps": 0.0, "duration": 0.0, "width": 0, "height": 0, "has_audio": False, "error": ""}
        first = self.start_index + int(self.offsets[i])
        try:
            folder = FrameFolder(self.paths[i], int(self.total_frames[i]), first, self.filename_tmpl)
            present = count_frames(folder.path, first, self.filename_tmpl)
            if folder.num_frames <= 0 or present == 0:
                raise ValueError(f"no frames ({self.filename_tmpl.format(first)} is not in the folder)")
            if present < folder.num_frames:
                raise ValueError(f"holds {present} of the {folder.num_frames} frames listed (the first absent: "
                                 f"{self.filename_tmpl.format(first + present)})")
            with Image.open(os.path.join(folder.path, self.filename_tmpl.format(first))) as image:  # the header
                width, height = image.size
            row.update(num_frames=folder.num_frames, width=width, height=height)
        except Exception as error:  # noqa: BLE001 - any failure makes the folder unusable; say why
            row["error"] = f"{type(error).__name__}: {error}".strip()
        return row

    def fingerprint(self) -> str:
        """``VideoIndex.fingerprint`` (a folder's modification time changes when a frame is added or
        removed) with the frame counts, offsets and file names."""
        digest = hashlib.sha1(super().fingerprint().encode())
        for array in (self.total_frames, self.offsets):
            digest.update(np.ascontiguousarray(array, np.int64).tobytes())
        digest.update(f"{self.filename_tmpl}\0{self.start_index}".encode())
        return digest.hexdigest()


def read_rawframe_list(list_path: str | Path, data_root: str | Path = "", classes: list[str] | None = None, *,
                       classes_from: str = "", duplicates: str = "keep", filename_tmpl: str = FILENAME_TMPL,
                       start_index: int = START_INDEX) -> FrameFolderIndex:
    """Read an mmaction2 frame-folder list (``frame_dir [offset] total_frames label``, or its JSON form).

    Args:
        list_path: the list file (``annotations.read_frame_list``).
        data_root: the folder the frame folders are relative to.
        classes: names of the labels; by default ``"0"``, ``"1"``, ... up to the largest label found.
        classes_from: where ``classes`` come from, named when a label is outside them.
        duplicates: a folder listed twice is kept twice (``"keep"``) or once (``"drop"``).
        filename_tmpl: a frame's file name, formatted with its number.
        start_index: the number of a folder's first frame.
    """
    entries = read_frame_list(list_path)
    classes = check_labels(entries, classes, classes_from)
    paths, kept, missing = locate(entries, Path(data_root), str(list_path), duplicates)
    index = VideoIndex.from_paths(paths, [entries[i].label for i in kept], classes, missing, str(list_path))
    return FrameFolderIndex.of(index, [entries[i].total_frames for i in kept], [entries[i].offset for i in kept],
                               filename_tmpl=filename_tmpl, start_index=start_index)
