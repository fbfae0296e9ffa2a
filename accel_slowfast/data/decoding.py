"""Video decoders: open a file (or a video held in memory), report its frame count and rate,
return chosen frames.

The rule every decoder keeps: frame ``i`` is the ``i``-th frame a plain sequential decode outputs
(``for frame in container.decode(video=0)``), i.e. presentation order, and ``num_frames`` is how
many it outputs. Clips are sampled by frame index (as mmaction2 and decord do), so timestamps
only help find frames: they lie in AVIs with B-frames (H.264 in AVI is stamped in decoding order),
in variable-frame-rate files a frame's time is not ``i / fps``, and a header's count can be wrong
(a truncated file). ``streams.FrameTable`` (one demuxing pass at each open, under 1 ms for a 7 s
clip) counts the frames and places the keyframes.

Every decoder returns frames as uint8 ``(T, H, W, C)`` RGB, the layout FFmpeg converts to, so
transforms never depend on the backend (``transforms.py`` crops them into the model's uint8
``(C, T, H, W)``, which the model normalizes). Select one with the ``decoder`` recipe key:

============== =================================================================================
``pyav``       the reference: the rule itself, PyAV decoding every clip from the first frame
               (``pyav_decoding.py``); slow on long videos
``fast``       PyAV decoding of only what a clip needs: seek to the keyframe before the first
               index, count frames from it, stop after the last, convert to RGB only the sampled
               frames (bitwise the same frames)
``torchcodec`` torchcodec's FFmpeg decoding (the optional extra ``accel_slowfast[torchcodec]`` and
               the system's FFmpeg; ``torchcodec_decoding.py``): bitwise the same frames on the CPU;
               with ``decoder_device: cuda``, NVDEC onto the run's GPU (not bitwise: the GPU's RGB
               conversion rounds differently)
============== =================================================================================

Speed depends on the codec (one thread, the seed's 32x2 training clip at 224 px from 320x240
video; ``bench/data_throughput.py``, docs/PERFORMANCE.md): on UCF101's MPEG-4 part 2 and on H.264
``fast`` and ``torchcodec`` were level (116 and 119 clips/s; 48 and 48), on HEVC ``torchcodec``
led (62 against 47); ``pyav`` took 2.5 times ``fast``'s CPU time a clip on MPEG-4 part 2. So ``fast`` is the
default: bitwise the reference's frames, several times its speed, and installed with the package
(``torchcodec`` needs an extra package and the system's FFmpeg: choose it for HEVC, or to decode
on the GPU).

A video whose clip is over the decode budget (``max_decode_pixels``) never reaches a decoder: the
probe refuses it from its header (``probe.py`` says why it is not resized instead).

A stream whose frame size changes part-way (a re-encoded or spliced file) is resized back to its
first frame's size (the stream header's), so its clips stack; every decoder resizes the same way.

Check that a decoder returns the reference's frames: ``pytest tests/test_decoding.py
tests/test_presentation_order.py tests/test_torchcodec_decoding.py``.
"""

import torch

from accel_slowfast.data.pyav_decoding import PyAVFast, PyAVSequential
from accel_slowfast.data.torchcodec_decoding import TorchCodecVideo
from accel_slowfast.recipe.data import DEFAULT_DECODER

DECODERS = {"pyav": PyAVSequential, "fast": PyAVFast, "torchcodec": TorchCodecVideo}


def open_video(source, decoder: str = DEFAULT_DECODER, device: str | torch.device = "cpu"):
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
