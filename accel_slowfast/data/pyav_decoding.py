"""The PyAV decoders: ``pyav``, a plain sequential decode (the reference), and ``fast``, which
decodes only what a clip needs; ``decoding.py`` compares them and opens either.

    with PyAVFast("v.avi") as video: video.get_frames(np.arange(0, 64, 2))  # uint8 (32, H, W, 3)
"""

from fractions import Fraction

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from accel_slowfast.data.streams import FrameTable, first_size, fit, open_source, source_name


class PyAVSequential:
    """The rule itself: PyAV decodes from the first frame, and frame ``i`` is the ``i``-th it outputs.

    Slow (every clip decodes from the start of its video) but it needs no timestamp, so it is the
    reference the other decoders are checked against.
    """

    def __init__(self, source):
        self.path = source_name(source)
        self._container = av.open(open_source(source))
        try:
            if not self._container.streams.video:
                raise RuntimeError(f"{self.path}: no video stream")
            self._stream = stream = self._container.streams.video[0]
            self.fps = _rate(stream)
            self.num_frames = FrameTable(self._container, stream).num_frames
            self._size = first_size(stream)
        except Exception:
            self._container.close()
            raise

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``."""
        wanted, last = set(np.asarray(indices).ravel().tolist()), int(np.max(indices))
        self._container.seek(min(self._stream.start_time or 0, 0), stream=self._stream, backward=True)
        rgb = {}
        for i, frame in enumerate(self._container.decode(self._stream)):
            if i in wanted:
                rgb[i] = fit(frame.to_rgb().to_ndarray(), self._size)
            if i >= last:
                break
        return _pick(rgb, indices, self.path)

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rate(stream: av.video.stream.VideoStream) -> Fraction:
    return Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate)


def _pick(rgb: dict[int, np.ndarray], indices: np.ndarray, name: str) -> torch.Tensor:
    """The decoded frames ``rgb`` ({index: array}) at ``indices``, stacked; an index past the last
    decoded frame (a stream that ends early) gets the last decoded frame."""
    if not rgb:
        raise RuntimeError(f"{name}: could not decode frames {int(np.min(indices))}..{int(np.max(indices))}")
    available = np.array(sorted(rgb))
    chosen = available[np.maximum(np.searchsorted(available, indices, side="right") - 1, 0)]
    return torch.from_numpy(np.stack([rgb[i] for i in chosen]))


class PyAVFast:
    """PyAV decoding of the frames a clip needs, from the keyframe before them to the last one.

    Frames are placed by ``streams.FrameTable``: decoding starts at the last keyframe at or before
    the first index, whose index the table knows, and counts the frames output from it, so frame
    ``i`` is the ``i``-th of a sequential decode whatever the timestamps say (B-frames in AVI, a
    variable frame rate, a late start). Frames output before that keyframe (an open group of
    pictures' leading frames, which need the previous group) are skipped; if the seek lands past
    it, decoding starts again from the first frame. Only the sampled frames are converted to RGB,
    by the reference's swscale conversion (``to_rgb()``), so the output is bitwise the reference's.
    One reformatter serves every frame: ``frame.to_rgb()`` sets up a swscale context (and its
    threads) per frame, which cost more than decoding the frame.

    Args:
        source: the video file, or its bytes held in memory.
        threads: let FFmpeg decode with its own threads (``thread_type="AUTO"``). Off by
            default: at UCF101's 320x240 it made decoding slower, and data-loader workers
            already keep the cores busy.
    """

    def __init__(self, source, *, threads: bool = False):
        self.path = source_name(source)
        self._container = av.open(open_source(source))
        try:
            if not self._container.streams.video:
                raise RuntimeError(f"{self.path}: no video stream")
            self._stream = stream = self._container.streams.video[0]
            if threads:
                stream.thread_type = "AUTO"
            self.fps = _rate(stream)
            self._table = FrameTable(self._container, stream)
            self.num_frames = self._table.num_frames
            self._start = min(stream.start_time or 0, 0)
            self._size = first_size(stream)
            self._to_rgb = VideoReformatter()
        except Exception:
            self._container.close()
            raise

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``."""
        wanted = set(np.asarray(indices).ravel().tolist())
        return _pick(self._decode(wanted, min(wanted), max(wanted)), indices, self.path)

    def _decode(self, wanted: set[int], first: int, last: int) -> dict[int, np.ndarray]:
        """RGB arrays of the ``wanted`` frames, decoding from the keyframe before ``first``."""
        keyframe = self._table.keyframe_before(first)
        for retry in (False, True):
            from_start = retry or keyframe is None
            self._container.seek(self._start if from_start else keyframe, stream=self._stream, backward=True)
            rgb, index = {}, (-1 if from_start else None)  # from the start, the first frame output is frame 0
            for frame in self._container.decode(self._stream):
                if index is None:
                    index = self._table.keyframe_index.get(frame.pts)
                    if index is None:
                        continue  # before the keyframe: not yet counted
                    if index > first:
                        break  # the seek landed past the clip: decode from the start instead
                else:
                    index += 1
                if index in wanted:
                    rgb[index] = fit(self._to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray(), self._size)
                if index >= last:
                    return rgb
            else:
                if index is not None or from_start:
                    return rgb  # the stream ended before ``last``
        return rgb

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
