"""What every decoder reads from a stream the same way: its source (a file, or a video held in
memory), its frame count, its first frame's size, and the resize of a frame whose size changed
mid-stream back to that size; and a video's metadata as the probe caches it (``probe_video``).

A source is a path or a bytes-like object (``bytes``, ``bytearray``, ``memoryview``: a video's
encoded bytes, e.g. a Hugging Face ``datasets`` Video row's ``bytes``), decoded straight from
memory: no temporary file is written.

The decoders (``decoding.py``: PyAV; ``torchcodec_decoding.py``: torchcodec) share these, so a
clip sampler draws the same indices and gets frames of the same size whatever the backend.
"""

import io
import math
from bisect import bisect_left, bisect_right
from pathlib import Path

import av
import numpy as np
import torch

from accel_slowfast.data.transforms import resize

BYTES_LIKE = (bytes, bytearray, memoryview)


def in_memory(source) -> bool:
    """Whether ``source`` is a video's encoded bytes rather than a path."""
    return isinstance(source, BYTES_LIKE)


def source_name(source) -> str:
    """How messages name ``source``: its path, or the size of the video held in memory."""
    return f"<video in memory, {memoryview(source).nbytes} bytes>" if in_memory(source) else str(source)


def open_source(source):
    """What ``av.open`` reads ``source`` from: the path, or a reader over the bytes in memory.

    ``io.BytesIO`` shares a ``bytes`` object's buffer until written to (it never is here); other
    bytes-like objects are copied once, in memory.
    """
    return io.BytesIO(source) if in_memory(source) else str(source)


class FrameTable:
    """A stream's frames as one demuxing pass finds them (packets read, none decoded).

    Frame ``i`` is the ``i``-th frame a sequential decode outputs (presentation order), and
    ``num_frames`` counts them: one per non-empty packet, which a header's count or duration can
    miss (a truncated file, a variable frame rate, Matroska's missing count). A packet's
    timestamp is its ``pts`` (else ``dts``), and a decoded frame carries its packet's. Keyframe
    ``k``'s index is the number of timestamps below its own: its presentation index where
    timestamps are presentation times, and its decoding position where they only count packets
    (H.264 in AVI), which is its presentation index too when its group of pictures is closed.
    Decoding from a keyframe then numbers the frames it outputs from there.

    The pass reads the whole file (about 3 us a packet: under 1 ms for a 7 s clip at 25 fps),
    and every decoder opens a video with one: a header alone cannot place the frames of a
    variable-rate stream or of an AVI with B-frames.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream):
        stamps, keys = [], []
        for packet in container.demux(stream):
            if packet.size:  # the empty packet at the end flushes the decoder: no frame
                stamp = packet.pts if packet.pts is not None else packet.dts
                stamps.append(stamp)
                if packet.is_keyframe and stamp is not None:
                    keys.append(stamp)
        self.num_frames = len(stamps)
        known = [stamp for stamp in stamps if stamp is not None]
        # The codec reorders frames, yet the stamps rise in decoding order: they count packets
        # (AVI's H.264), and sorting by them would give the decoding order.
        self.stamps_count_packets = bool(stream.codec_context.has_b_frames) and known == sorted(known)
        known.sort()
        self.keyframe_index = {stamp: bisect_left(known, stamp) for stamp in keys}  # {stamp: frame index}
        self.keyframes = sorted((index, stamp) for stamp, index in self.keyframe_index.items())

    def keyframe_before(self, index: int) -> int | None:
        """The timestamp of the last keyframe at or before frame ``index`` (None if none is)."""
        k = bisect_right(self.keyframes, (index, math.inf)) - 1
        return self.keyframes[k][1] if k >= 0 else None


def first_size(stream: av.video.stream.VideoStream) -> tuple[int, int] | None:
    """``(height, width)`` of the stream's first frame, from its header (None if it has none)."""
    height, width = stream.codec_context.height, stream.codec_context.width
    return (height, width) if height and width else None


def fit(rgb: np.ndarray | torch.Tensor, size: tuple[int, int] | None) -> np.ndarray | torch.Tensor:
    """A uint8 ``(H, W, C)`` frame resized (bilinear) to ``size`` when it has another one."""
    if size is None or tuple(rgb.shape[:2]) == size:
        return rgb
    resized = resize(torch.as_tensor(rgb)[None], *size)[0].contiguous()
    return resized.numpy() if isinstance(rgb, np.ndarray) else resized


def probe_video(source: str | Path | bytes | memoryview) -> dict:
    """Metadata of one video; ``error`` says why it cannot be used ("" when fine).

    ``num_frames`` is ``FrameTable``'s, the frames a sequential decode outputs and the count the
    decoders sample clips from, so the data check's "too short" and a clip sampler agree on every
    container; the rest is read from the header, and no frame is decoded (a video over the decode budget,
    ``probe.py``, is refused from this row). ``source`` is a path or a video held in memory (``open_source``).
    """
    row = {"num_frames": 0, "fps": 0.0, "duration": 0.0, "width": 0, "height": 0, "has_audio": False, "error": ""}
    try:
        size = memoryview(source).nbytes if in_memory(source) else Path(source).stat().st_size
        if size == 0:
            raise ValueError("empty file (0 bytes)")
        # FFmpeg decodes a frame or two to fill in a stream's details unless told to skip them: an
        # 8000x8000 H.264 file cost 240 MB to open that way, 5 MB skipping (its size is read all the same).
        with av.open(open_source(source), options={"skip_frame": "all"}) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = container.duration / 1e6 if container.duration else 0.0
            row.update(
                num_frames=FrameTable(container, stream).num_frames, fps=fps, duration=duration,
                width=stream.codec_context.width, height=stream.codec_context.height,
                has_audio=bool(container.streams.audio),
            )
            if row["num_frames"] <= 0:
                raise ValueError("no frames")
    except Exception as error:  # noqa: BLE001 - any failure makes the video unusable; say why
        row["error"] = f"{type(error).__name__}: {error}".strip()
    return row
