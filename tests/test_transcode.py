"""One video re-encoded (short side, keyframes every 16 frames, frame count) or written as JPEG frames."""

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from accel_slowfast.data.transcode import available_encoders, count_frames, extract_frames, output_size, reencode


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4", gop: int = 250) -> Path:
    """``frames`` ``(T, H, W, 3)`` uint8 as a 25-fps video, a keyframe every ``gop`` frames (UCF101's are far apart)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options={"sc_threshold": "1000000000"})  # no cut detection
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def grey_ramp(count: int, height: int = 48, width: int = 64, step: int = 4) -> np.ndarray:
    """Frame i is flat grey ``step * i``: its content tells its position."""
    grey = (np.arange(count) * step).astype(np.uint8)
    return np.broadcast_to(grey[:, None, None, None], (count, height, width, 3)).copy()


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def keyframe_gaps(path: Path) -> list[int]:
    """Packets from one keyframe to the next (and from the last to the end), read from the packet flags."""
    with av.open(str(path)) as container:
        keys = [packet.is_keyframe for packet in container.demux(video=0) if packet.size]
    starts = [i for i, key in enumerate(keys) if key]
    return [b - a for a, b in zip(starts, [*starts[1:], len(keys)], strict=True)]


def test_output_size_keeps_the_aspect_ratio_like_ffmpeg_scale():
    assert output_size(320, 240, 256, even=True) == (342, 256)  # ffmpeg scale=-2:256 on UCF101
    assert output_size(240, 320, 256, even=True) == (256, 342)  # portrait: the width is the short side
    assert output_size(320, 240, 256, even=False) == (341, 256)
    assert output_size(321, 241, 0, even=True) == (320, 240)


@pytest.mark.parametrize("encoder", available_encoders())
def test_reencode_gives_the_short_side_keyframes_every_16_frames_and_every_frame(tmp_path, encoder):
    source = write_video(tmp_path / "a.avi", grey_ramp(24, step=10))
    assert keyframe_gaps(source) == [24]  # the source seeks from its first frame only
    count = reencode(source, tmp_path / "out" / "a.mp4", short_side=32, encoder=encoder)
    with av.open(str(tmp_path / "out" / "a.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (42, 32)
        assert not container.streams.audio
        assert stream.average_rate == 25
    assert max(keyframe_gaps(tmp_path / "out" / "a.mp4")) <= 16
    frames = decoded(tmp_path / "out" / "a.mp4")
    assert count == len(frames) == 24
    # lossy twice, yet each frame is nearer its own grey than its neighbours' (10 apart): all kept, in order
    np.testing.assert_allclose([frame.mean() for frame in frames], np.arange(24) * 10, atol=5)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.mp4"]  # no temporary file left


def test_libx264_is_the_default_where_pyav_has_it():
    assert available_encoders()[0] == "libx264"  # PyAV's PyPI wheels bundle x264


def test_extract_frames_writes_rgb_jpegs_in_presentation_order(tmp_path):
    colours = grey_ramp(20)
    colours[:, :, :, 0] = 200  # red high, blue low: a BGR file would show it swapped
    colours[:, :, :, 2] = 30
    # libx264 reorders frames (B-frames): decode order differs from presentation order
    source = write_video(tmp_path / "b.mp4", colours, codec="libx264", gop=250)
    assert extract_frames(source, tmp_path / "frames" / "b", short_side=0) == 20
    names = sorted(p.name for p in (tmp_path / "frames" / "b").iterdir())
    assert names == [f"img_{i:05d}.jpg" for i in range(1, 21)]
    assert count_frames(tmp_path / "frames" / "b") == 20
    for i, name in enumerate(names):
        image = Image.open(tmp_path / "frames" / "b" / name)
        assert image.mode == "RGB" and image.size == (64, 48)
        np.testing.assert_allclose(np.asarray(image).reshape(-1, 3).mean(0), [200, 4 * i, 30], atol=4)


def test_extract_frames_resizes_to_the_short_side(tmp_path):
    source = write_video(tmp_path / "c.avi", grey_ramp(3))
    extract_frames(source, tmp_path / "c", short_side=24)
    assert Image.open(tmp_path / "c" / "img_00001.jpg").size == (32, 24)


def test_a_video_that_does_not_decode_raises_and_leaves_nothing(tmp_path):
    (tmp_path / "bad.avi").write_bytes(b"not a video" * 100)
    with pytest.raises(av.error.FFmpegError):
        reencode(tmp_path / "bad.avi", tmp_path / "out" / "bad.mp4")
    with pytest.raises(av.error.FFmpegError):
        extract_frames(tmp_path / "bad.avi", tmp_path / "out" / "bad")
    assert [path.name for path in tmp_path.rglob("*")] == ["bad.avi"]
