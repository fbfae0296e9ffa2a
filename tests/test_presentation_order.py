"""Frame ``i`` is the ``i``-th frame a sequential decode outputs, for every decoder, on the files
datasets hold that the ``ffmpeg`` command writes: B-frames in AVI (XviD's MPEG-4, H.264), a
variable frame rate, a late start, Matroska/WebM, and a truncated AVI whose header count is wrong."""

import shutil
import subprocess

import av
import numpy as np
import pytest
from conftest import decoder_params

from accel_slowfast.data.decoding import DECODERS, open_video
from accel_slowfast.data.streams import probe_video

SOURCE = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "60"]
DROP = ["-vf", r"select='not(between(n\,20\,29))'", "-fps_mode", "vfr"]  # 10 frames missing: 0.4 s with none
VIDEOS = {  # file: (encoder, ffmpeg options)
    "xvid_bframes.avi": ("mpeg4", ["-vtag", "XVID", "-bf", "2", "-q:v", "4"]),  # UCF101/HMDB51's kind
    "h264_bframes.avi": ("libx264", ["-bf", "2"]),  # timestamps in decoding order
    "vfr.mp4": ("libx264", DROP),
    "vfr.mkv": ("libx264", DROP),
    "vfr.webm": ("libvpx-vp9", DROP),
    "late_start.mp4": ("libx264", ["-bf", "2", "-output_ts_offset", "1.37"]),
    "truncated.avi": ("mpeg4", ["-vtag", "XVID", "-bf", "2", "-q:v", "4"]),  # cut below
}


def _truncate(path) -> None:
    """Cut the file where its third keyframe's packet starts: the header still counts 60 frames."""
    with av.open(str(path)) as container:
        keyframes = [packet.pos for packet in container.demux(video=0) if packet.is_keyframe and packet.size]
    with open(path, "r+b") as file:
        file.truncate(keyframes[2])


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    """``{file name: path, or why it could not be written}``."""
    if shutil.which("ffmpeg") is None:
        return dict.fromkeys(VIDEOS, "no ffmpeg command (apt-get install ffmpeg)")
    listed = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    available = {line.split()[1] for line in listed.splitlines() if len(line.split()) > 1}
    root, paths = tmp_path_factory.mktemp("order"), {}
    for name, (encoder, options) in VIDEOS.items():
        if encoder not in available:
            paths[name] = f"this ffmpeg has no {encoder} encoder"
            continue
        paths[name] = root / name
        command = ["ffmpeg", "-v", "error", "-y", *SOURCE, "-c:v", encoder, "-g", "12", *options, str(paths[name])]
        subprocess.run(command, check=True, capture_output=True)
        if name == "truncated.avi":
            _truncate(paths[name])
    return paths


def _video(videos, name):
    if isinstance(videos[name], str):
        pytest.skip(videos[name])
    return videos[name]


def _sequential(path) -> np.ndarray:
    """Every frame of a plain sequential decode, ``(T, H, W, 3)`` uint8."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_rgb().to_ndarray() for frame in container.decode(video=0)])


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_frame_i_is_the_ith_frame_a_sequential_decode_outputs(videos, name, decoder):
    path = _video(videos, name)
    decoded = _sequential(path)
    count = len(decoded)
    rng = np.random.default_rng(0)
    clips = [np.arange(count), *([i] for i in range(count)), *(np.sort(rng.integers(0, count, 8)) for _ in range(6)),
             (count - 6 + np.arange(8) * 2) % count]  # each frame on its own, random clips, a looping clip
    with open_video(path, decoder) as video:
        assert video.num_frames == count
        for indices in clips:
            frames = video.get_frames(np.asarray(indices)).numpy()
            wrong = np.flatnonzero((frames != decoded[indices]).any(axis=(1, 2, 3)))
            assert not wrong.size, f"{name}, {decoder}: frames {np.asarray(indices)[wrong].tolist()} differ"


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_the_probe_counts_the_frames_a_sequential_decode_outputs(videos, name):
    path = _video(videos, name)
    probed = probe_video(path)
    assert probed["error"] == "" and probed["num_frames"] == len(_sequential(path))


def test_a_truncated_avi_header_counts_frames_it_does_not_hold(videos):
    with av.open(str(_video(videos, "truncated.avi"))) as container:
        assert container.streams.video[0].frames == 60 > len(_sequential(_video(videos, "truncated.avi")))
