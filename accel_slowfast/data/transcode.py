"""One video converted for fast training: re-encoded small with frequent keyframes, or as JPEG frames.

    frames = reencode("UCF-101/A/v_a.avi", "videos_256/A/v_a.mp4", short_side=256)   # H.264, keyframe <= 16
    frames = extract_frames("UCF-101/A/v_a.avi", "rawframes/A/v_a", short_side=256)   # img_00001.jpg ...
    accel-slowfast data prepare UCF-101 videos_256 --splits ucfTrainTestlist        # the whole tree

Both decode the source sequentially, so frame i of the output is the i-th frame a sequential
decode of the source gives (presentation order, whatever its B-frames or time stamps), and both
write under a hidden temporary name renamed into place when complete: an existing output is a
finished one. Decoding and encoding use one thread: ``prepare`` runs one process per core, and
one thread makes the encoder's output the same whatever the number of processes.

The re-encoded video is what mmaction2's ``resize_videos.py --dense --scale 256`` writes with
the ``ffmpeg`` command (short side 256, the long side rounded to an even size, at most 16 frames
from one keyframe to the next, no audio), made here with PyAV's own FFmpeg. Its frames are
numbered 0, 1, 2, ... at the source's average frame rate, so the frame count is kept exactly.
"""

import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

ENCODERS = ("libx264", "mpeg4")  # preferred first: H.264 where PyAV's FFmpeg has it, else MPEG-4 part 2
MPEG4_QSCALE = 3  # mpeg4's fixed quantiser (ffmpeg -q:v 3); its default 200 kb/s blurs a 256-px video
JPEG_QUALITY = 95  # OpenCV's imwrite default, which mmaction2's frame extraction uses
FRAME_NAME = "img_{:05d}.jpg"  # mmaction2's rawframes: 1-based, 5 digits


def available_encoders() -> list[str]:
    """The ``ENCODERS`` that this PyAV's FFmpeg can encode with, preferred first."""
    found = []
    for name in ENCODERS:
        try:
            av.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        found.append(name)
    return found


def output_size(width: int, height: int, short_side: int, even: bool) -> tuple[int, int]:
    """``(width, height)`` with the short side ``short_side`` (0: unchanged) and the aspect ratio kept.

    The long side is rounded to the nearest size (the nearest even size when ``even``, which 4:2:0
    video needs: ffmpeg's ``scale=-2:N``).
    """
    step = 2 if even else 1
    if short_side == 0:
        return width - width % step, height - height % step
    long_side = round(max(width, height) * short_side / min(width, height) / step) * step
    return (long_side, short_side) if width >= height else (short_side, long_side)


def _frames(path: str | Path):
    """The opened source and a generator of its decoded frames, in presentation order."""
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise ValueError("no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return container, stream, container.decode(stream)


def _temporary(path: Path) -> Path:
    """The hidden sibling an output is written to before its rename (``.name.part``)."""
    return path.with_name(f".{path.name}.part")


def reencode(source: str | Path, target: str | Path, *, short_side: int = 256, gop: int = 16,
             encoder: str = ENCODERS[0]) -> int:
    """Write ``source`` as an MP4 video at ``target``; return its number of frames.

    Args:
        source: any video PyAV reads.
        target: the ``.mp4`` to write (its folder is made).
        short_side: the short side of the output (even), 0 to keep the size.
        gop: the most frames from one keyframe to the next (a seek decodes at most this many).
        encoder: ``"libx264"`` (x264's defaults: CRF 23, preset medium) or ``"mpeg4"``.
    """
    target = Path(target)
    part = _temporary(target)
    container, stream, frames = _frames(source)
    count = 0
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        width, height = output_size(stream.codec_context.width, stream.codec_context.height, short_side, even=True)
        with av.open(str(part), "w", format="mp4") as output:
            out = output.add_stream(encoder, rate=rate)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.codec_context.gop_size = gop
            out.codec_context.thread_count = 1
            if encoder == "mpeg4":
                out.codec_context.qscale = True
                out.codec_context.global_quality = MPEG4_QSCALE * 118  # FF_QP2LAMBDA
            for frame in frames:
                small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
                small.pts, small.time_base = count, 1 / Fraction(rate)
                small.pict_type = PictureType.NONE  # else the source's keyframes are forced on the encoder
                output.mux(out.encode(small))
                count += 1
            output.mux(out.encode())
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        container.close()
    if count == 0:
        part.unlink()
        raise ValueError("no frame decoded")
    os.replace(part, target)
    return count


def extract_frames(source: str | Path, target: str | Path, *, short_side: int = 256) -> int:
    """Write every frame of ``source`` as an RGB JPEG in folder ``target``; return their number.

    The files are ``img_00001.jpg``, ``img_00002.jpg``, ... (mmaction2's rawframes), at the short
    side ``short_side`` (0: the source's size).
    """
    target = Path(target)
    part = _temporary(target)
    container, stream, frames = _frames(source)
    count = 0
    try:
        shutil.rmtree(part, ignore_errors=True)  # an interrupted run's leftover
        part.mkdir(parents=True)
        width, height = output_size(stream.codec_context.width, stream.codec_context.height, short_side, even=False)
        for count, frame in enumerate(frames, 1):
            image = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC").to_image()
            image.save(part / FRAME_NAME.format(count), quality=JPEG_QUALITY)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    finally:
        container.close()
    if count == 0:
        shutil.rmtree(part)
        raise ValueError("no frame decoded")
    os.replace(part, target)
    return count


def count_frames(folder: str | Path) -> int:
    """The number of ``img_*.jpg`` files of a finished frame folder."""
    return sum(1 for name in os.listdir(folder) if name.startswith("img_") and name.endswith(".jpg"))
