"""``decoder: torchcodec``: torchcodec's FFmpeg decoding on the CPU, or NVDEC on a GPU, behind the
decoders' interface (``decoding.py``).

torchcodec is an optional extra (``pip install "accel_slowfast[torchcodec]"``) that loads the
system's FFmpeg libraries (4 to 9; Debian's ``apt-get install ffmpeg`` gives 5.1).

On the CPU it returns bitwise the ``fast`` decoder's frames: the same frame for each index and
the same RGB conversion (FFmpeg's swscale, as PyAV's), checked on MPEG-4, H.264 with B-frames,
HEVC, VP9 and AV1 files by ``tests/test_torchcodec_decoding.py``. The frame count and rate are
read with PyAV (``streams.FrameTable``), as every decoder reads them, so a clip sampler draws
the same indices whatever the backend. Frames are found by an exact scan of the file
(``seek_mode="exact"``): index ``i`` is the ``i``-th frame in timestamp order, which is the
presentation order a sequential decode outputs, and an index past the last frame gets the last
frame, as the other decoders do. Where the timestamps follow the decoding order instead (H.264
with B-frames in AVI), timestamp order is wrong, so that video is decoded by the ``fast``
decoder, as is one torchcodec fails on (the last frame of an MPEG-4 AVI with B-frames);
``fallback_reason`` says why. One FFmpeg thread: each data-loader worker decodes its own
clips.

On a GPU (``device="cuda:N"``, the ``decoder_device: cuda`` recipe key) NVDEC decodes and CUDA
kernels convert to RGB, so the frames stay on that GPU, and are not bitwise the CPU's (the YUV to
RGB conversion rounds differently). A video NVDEC cannot take (a codec or profile it lacks, or
any error opening or decoding it) is decoded on the CPU instead: ``fallback_reason`` says why,
and its frames are CPU tensors for the caller to move.
"""

from fractions import Fraction

import av
import numpy as np
import torch

from accel_slowfast.data.pyav_decoding import PyAVFast
from accel_slowfast.data.streams import FrameTable, first_size, fit, in_memory, open_source, source_name


def torchcodec_missing() -> str:
    """Why torchcodec cannot decode here (the optional extra is not installed, or cannot load the
    system's FFmpeg), in one line; "" when it can."""
    try:
        import torchcodec.decoders  # noqa: F401 - loads FFmpeg's libraries, or says it cannot
    except (ImportError, RuntimeError, OSError) as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ""


class TorchCodecVideo:
    """One video decoded by torchcodec, on the CPU or with NVDEC.

    Args:
        source: the video file, or its bytes held in memory.
        device: where to decode: ``cpu``, or a CUDA device for NVDEC (falling back to the CPU).
    """

    def __init__(self, source, *, device: str | torch.device = "cpu"):
        self.path = source_name(source)
        self._source = str(source)
        if in_memory(source):  # torchcodec reads ``bytes`` in place: other bytes-like objects are copied once
            self._source = source if isinstance(source, bytes) else bytes(source)
        with av.open(open_source(source)) as container:
            if not container.streams.video:
                raise RuntimeError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            self.fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate)
            table = FrameTable(container, stream)
            self.num_frames = table.num_frames
            self._size, self._stream_index = first_size(stream), stream.index
        self.fallback_reason = ""
        self.device, self._decoder = torch.device(device), None  # device: where frames are decoded and returned
        if table.stamps_count_packets:
            # torchcodec orders frames by timestamp, and these timestamps follow the decoding order.
            self.fallback_reason = "its timestamps follow the decoding order, not the presentation order"
            self.device, self._decoder = torch.device("cpu"), PyAVFast(source)
        elif self.device.type == "cuda":
            try:
                decoder = self._open(device)
                # torchcodec's NVDEC backend would decode an unsupported stream on the CPU itself and
                # upload it: decoding it here instead keeps it out of the GPU's colour conversion.
                if decoder.cpu_fallback:
                    self.fallback_reason = str(decoder.cpu_fallback)
                else:
                    self._decoder = decoder
            except Exception as error:  # noqa: BLE001 - any NVDEC failure: decode on the CPU
                self.fallback_reason = f"{type(error).__name__}: {error}"
        if self._decoder is None:
            self.device, self._decoder = torch.device("cpu"), self._open("cpu")

    def _open(self, device: str | torch.device):
        from torchcodec.decoders import VideoDecoder  # the optional extra: imported when used

        return VideoDecoder(self._source, stream_index=self._stream_index, dimension_order="NHWC",
                            num_ffmpeg_threads=1, device=str(device), seek_mode="exact")

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``, on ``device``."""
        if isinstance(self._decoder, PyAVFast):
            return self._decoder.get_frames(indices)
        wanted = np.minimum(np.asarray(indices).ravel(), len(self._decoder) - 1).tolist()
        if self.device.type == "cuda":
            try:
                return self._frames_at(wanted)
            except Exception as error:  # noqa: BLE001 - an NVDEC decoding error: decode on the CPU
                self.fallback_reason = f"{type(error).__name__}: {error}"
                self.device, self._decoder = torch.device("cpu"), self._open("cpu")
        try:
            return self._frames_at(wanted)
        except RuntimeError as error:
            # torchcodec loses the last frame of an AVI with B-frames ("no more frames left to
            # decode"): PyAV decodes it (and a broken file fails there too).
            self.fallback_reason = f"{type(error).__name__}: {error}"
            self._decoder = PyAVFast(self._source)
            return self._decoder.get_frames(indices)

    def _frames_at(self, indices: list[int]) -> torch.Tensor:
        try:
            return self._decoder.get_frames_at(indices).data
        except RuntimeError:
            # A batch is allocated at one frame size, so a stream whose size changes part-way fails
            # as a batch; frame by frame, each resized to the first frame's size, it decodes (and a
            # broken file fails again).
            return torch.stack([fit(self._decoder.get_frame_at(i).data, self._size) for i in indices])

    def close(self) -> None:
        if isinstance(self._decoder, PyAVFast):
            self._decoder.close()
        self._decoder = self._source = None  # torchcodec closes the file when its decoder is freed

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
