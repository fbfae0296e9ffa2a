"""What every decoder reads from a stream the same way: its frame count, its first frame's size,
and the resize of a frame whose size changed mid-stream back to that size.

The decoders (``decoding.py``: PyAV; ``torchcodec_decoding.py``: torchcodec) share these, so a
clip sampler draws the same indices and gets frames of the same size whatever the backend.
"""

from fractions import Fraction

import av
import numpy as np
import torch

from accel_slowfast.data.transforms import resize


def frame_count(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Frames in ``stream``: the header's count, else its duration, else a demuxing pass.

    Every decoder uses this, so a clip sampler draws the same indices whatever the backend.
    (Matroska/WebM headers carry neither a count nor a stream duration, and their container
    duration may include the start offset, so those are counted packet by packet; demuxing
    reads the file without decoding it.)
    """
    if stream.frames:
        return stream.frames
    fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate)
    if stream.duration is not None:
        return round(stream.duration * Fraction(stream.time_base) * fps)
    start = 0 if stream.start_time is None else stream.start_time
    container.seek(start, stream=stream)
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(start, stream=stream)
    return count


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
