"""Video decoders: open a file, report its frame count and rate, return chosen frames.

Every decoder returns frames as float32 ``(C, T, H, W)`` in 0-255 RGB, the layout of
pytorchvideo's decoders, so transforms never depend on the backend. Select one with the
``decoder`` recipe key:

============ ===================================================================================
``pyav``     the reference: pytorchvideo 0.1.5's ``EncodedVideoPyAV.get_clip`` over the clip's span
============ ===================================================================================
"""

from fractions import Fraction

import numpy as np
import torch
from pytorchvideo.data.encoded_video_pyav import EncodedVideoPyAV


class PyAVReference:
    """pytorchvideo's PyAV decoding of the frames from the first to the last index needed."""

    def __init__(self, path):
        self.path = str(path)
        self._file = open(path, "rb")  # PyAV reads from it lazily: keep it open while decoding
        try:
            self._video = EncodedVideoPyAV(self._file, self.path, decode_audio=False)
        except Exception:
            self._file.close()
            raise
        # pytorchvideo exposes only the duration; the frame count and rate are the stream's.
        stream = self._video._container.streams.video[0]
        self.fps = Fraction(stream.average_rate)
        self.num_frames = stream.frames or int(self._video.duration * self.fps)

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as float ``(C, T, H, W)`` in 0-255."""
        first, last = int(indices.min()), int(indices.max())
        # Frame i is shown on [i / fps, (i + 1) / fps); get_clip returns frames in [start, end).
        clip = self._video.get_clip(Fraction(first) / self.fps, Fraction(last + 1) / self.fps)["video"]
        if clip is None:
            raise RuntimeError(f"{self.path}: could not decode frames {first}..{last}")
        # A header frame count may exceed what decodes; clamp rather than index past the end.
        return clip[:, np.minimum(indices - first, clip.shape[1] - 1)]

    def close(self) -> None:
        self._video.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


DECODERS = {"pyav": PyAVReference}


def open_video(path, decoder: str = "pyav"):
    """Open ``path`` with the named decoder; use as a context manager so the file is closed."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    return DECODERS[decoder](path)
