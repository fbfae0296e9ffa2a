"""Video decoders: open a file, report its frame count and rate, return chosen frames.

Every decoder returns frames as uint8 ``(T, H, W, C)`` RGB, the layout FFmpeg converts to, so
transforms never depend on the backend (``transforms.py`` crops them into the model's uint8
``(C, T, H, W)``, which the model normalizes). Select one with the ``decoder`` recipe key:

============== =================================================================================
``pyav``       the reference: pytorchvideo 0.1.5's ``EncodedVideoPyAV.get_clip`` over the clip's span
``fast``       PyAV decoding of only what a clip needs: seek to the keyframe before the first
               index, stop after the last, convert to RGB only the sampled frames (bitwise the
               same frames)
``torchcodec`` torchcodec's FFmpeg decoding (the optional extra ``accel_slowfast[torchcodec]`` and
               the system's FFmpeg; ``torchcodec_decoding.py``): bitwise the same frames on the CPU;
               with ``decoder_device: cuda``, NVDEC onto the run's GPU (not bitwise: the GPU's RGB
               conversion rounds differently)
============== =================================================================================

Speed depends on the codec (one thread, the seed's 32x2 training clip at 224 px from 320x240
video; ``bench/data_throughput.py``, docs/PERFORMANCE.md): on UCF101's MPEG-4 part 2 and on H.264
``fast`` and ``torchcodec`` were level (116 and 119 clips/s; 48 and 48), on HEVC ``torchcodec``
led (62 against 47); ``pyav`` gave 11 clips/s to ``fast``'s 56 on MPEG-4 part 2. So ``fast`` is the
default: bitwise the reference's frames, several times its speed, and installed with the package
(``torchcodec`` needs an extra package and the system's FFmpeg: choose it for HEVC, or to decode
on the GPU).

A stream whose frame size changes part-way (a re-encoded or spliced file) is resized back to its
first frame's size (the stream header's), so its clips stack; every decoder resizes the same way.

Check that a decoder returns the reference's frames: ``pytest tests/test_decoding.py
tests/test_torchcodec_decoding.py``.
"""

import math
from fractions import Fraction

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from pytorchvideo.data.encoded_video_pyav import EncodedVideoPyAV

from accel_slowfast.data.streams import first_size, fit, frame_count, in_memory, open_source, source_name
from accel_slowfast.data.torchcodec_decoding import TorchCodecVideo


class _SizeKeepingPyAV(EncodedVideoPyAV):
    """pytorchvideo's ``EncodedVideoPyAV``, with frames whose size changed mid-stream resized to the
    first frame's (pytorchvideo would fail to stack them)."""

    def _pyav_decode_video(self, start_secs: float = 0.0, end_secs: float = math.inf):
        # Read before the first decode: the codec context then takes each decoded frame's size.
        size = self.__dict__.setdefault("_first_size", first_size(self._container.streams.video[0]))
        video, audio = super()._pyav_decode_video(start_secs, end_secs)
        if video is not None and size is not None:
            video = [(fit(frame, size), pts) for frame, pts in video]
        return video, audio


class PyAVReference:
    """pytorchvideo's PyAV decoding of the frames from the first to the last index needed."""

    def __init__(self, source):
        self.path = source_name(source)
        # PyAV reads from it lazily: keep it open while decoding
        self._file = open_source(source) if in_memory(source) else open(source, "rb")
        try:
            self._video = _SizeKeepingPyAV(self._file, self.path, decode_audio=False)
        except Exception:
            self._file.close()
            raise
        # pytorchvideo exposes only the duration; the frame count and rate are the stream's.
        stream = self._video._container.streams.video[0]
        self.fps = Fraction(stream.average_rate)
        self.num_frames = frame_count(self._video._container, stream)

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``."""
        first, last = int(indices.min()), int(indices.max())
        # Frame i is shown on [i / fps, (i + 1) / fps); get_clip returns frames in [start, end).
        clip = self._video.get_clip(Fraction(first) / self.fps, Fraction(last + 1) / self.fps)["video"]
        if clip is None:
            raise RuntimeError(f"{self.path}: could not decode frames {first}..{last}")
        # A header frame count may exceed what decodes; clamp rather than index past the end.
        clip = clip[:, np.minimum(indices - first, clip.shape[1] - 1)]  # float (C, T, H, W) of integers 0-255
        return clip.permute(1, 2, 3, 0).to(torch.uint8, memory_format=torch.contiguous_format)

    def close(self) -> None:
        self._video.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PyAVFast:
    """PyAV decoding of the frames a clip needs, and of nothing after the last one.

    Frames are identified by index, ``round((pts - start_time) * time_base * fps)``, so a
    stream that starts at a non-zero timestamp or whose timestamps jitter by less than half
    a frame still maps each frame to its index. Only the sampled frames are converted to
    RGB, by the reference's swscale conversion (``to_rgb()``), so the output is bitwise the
    reference's. One reformatter serves every frame: ``frame.to_rgb()`` sets up a swscale
    context (and its threads) per frame, which cost more than decoding the frame.

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
            self.fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate)
            self._time_base = Fraction(stream.time_base)
            self._start = stream.start_time or 0
            frames_per_tick = self._time_base * self.fps  # integer arithmetic per frame: Fractions cost ~10 us
            self._index_num, self._index_den = frames_per_tick.numerator, frames_per_tick.denominator
            self.num_frames = frame_count(self._container, stream)
            self._size = first_size(stream)
            self._to_rgb = VideoReformatter()
        except Exception:
            self._container.close()
            raise

    def _index(self, pts: int) -> int:
        """``round((pts - start) * time_base * fps)``, rounding halves to even as ``round`` does."""
        index, twice_rest = divmod(2 * (pts - self._start) * self._index_num, 2 * self._index_den)
        if twice_rest > self._index_den or (twice_rest == self._index_den and index % 2):
            index += 1
        return index

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``."""
        wanted = {int(i) for i in np.asarray(indices).ravel()}
        first, last = min(wanted), max(wanted)
        rgb = self._decode(wanted, first, last)
        if not rgb:
            raise RuntimeError(f"{self.path}: could not decode frames {first}..{last}")
        # A header frame count may exceed what decodes: like the reference, an index past the
        # last decoded frame gets the last decoded frame.
        available = np.array(sorted(rgb))
        chosen = available[np.maximum(np.searchsorted(available, indices, side="right") - 1, 0)]
        return torch.from_numpy(np.stack([rgb[i] for i in chosen]))

    def _decode(self, wanted: set[int], first: int, last: int) -> dict[int, np.ndarray]:
        """RGB arrays of the ``wanted`` frames, decoding from the keyframe before ``first``."""
        # Aim half a frame early, so timestamps rounded to a coarse time base still land before.
        target = self._start + int((first - Fraction(1, 2)) / self.fps / self._time_base)
        for retry, seek_pts in enumerate((max(target, self._start), self._start)):
            self._container.seek(seek_pts, stream=self._stream, backward=True)
            rgb, index = {}, None
            for n, frame in enumerate(self._container.decode(self._stream)):
                if frame.pts is not None:
                    index = self._index(frame.pts)
                elif index is not None or retry:  # no timestamp: the frame after the previous one
                    index = 0 if index is None else index + 1
                if n == 0 and not retry and (index is None or index > first):
                    break  # the seek overshot (or left us lost): decode from the start instead
                if index in wanted:
                    rgb[index] = fit(self._to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray(), self._size)
                if index >= last:
                    return rgb
            else:
                return rgb  # the stream ended before ``last``
        return rgb

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


DECODERS = {"pyav": PyAVReference, "fast": PyAVFast, "torchcodec": TorchCodecVideo}


def open_video(source, decoder: str = "fast", device: str | torch.device = "cpu"):
    """Open ``source`` with the named decoder; use as a context manager so the file is closed.

    ``source`` is a path or a video's encoded bytes held in memory (``bytes``, ``memoryview``),
    decoded from memory without a temporary file.

    ``device`` other than the CPU is torchcodec's alone (NVDEC); its frames come back on
    ``video.device``, which is the CPU for a video NVDEC could not take (``video.fallback_reason``).
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    if decoder == "torchcodec":
        return TorchCodecVideo(source, device=device)
    if torch.device(device).type != "cpu":
        raise ValueError(f"decoder {decoder!r} decodes on the CPU only; decoder 'torchcodec' decodes on {device}")
    return DECODERS[decoder](source)
