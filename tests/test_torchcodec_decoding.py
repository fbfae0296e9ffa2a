"""``decoder: torchcodec`` returns bitwise the ``fast`` decoder's frames on the codecs datasets use,
in files the ``ffmpeg`` command writes; a video NVDEC cannot take is decoded on the CPU."""

import logging
import shutil
import subprocess

import numpy as np
import pytest
import torch
from conftest import needs_torchcodec

from accel_slowfast.data import ClipDataset, VideoIndex, VideoRecord
from accel_slowfast.data import index as index_module
from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.torchcodec_decoding import TorchCodecVideo
from accel_slowfast.data.transforms import train_transform

pytestmark = needs_torchcodec

NUM_FRAMES, FPS, GOP, HEIGHT, WIDTH = 40, 25, 8, 64, 80  # SVT-AV1 needs 64 lines or more
CODECS = {  # file: (ffmpeg encoders to try, first available wins; their options)
    "xvid.avi": (["mpeg4"], ["-vtag", "xvid"]),  # UCF101's
    "h264_bframes.mp4": (["libx264"], ["-bf", "2"]),  # frames decode out of order
    "hevc.mp4": (["libx265"], ["-x265-params", "log-level=error"]),
    "vp9.webm": (["libvpx-vp9"], []),  # Matroska: no frame count in the header
    "av1.mkv": (["libaom-av1", "libsvtav1"], []),
}


def _frames() -> np.ndarray:
    """A drifting texture with grain, ``(T, H, W, 3)`` uint8: inter-coded like camera video."""
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(40, 216, size=(HEIGHT // 4 + 1, WIDTH // 4 + 1 + NUM_FRAMES, 3)), np.ones((4, 4, 1)))
    frames = [texture[:HEIGHT, t:t + WIDTH] + rng.normal(0, 2, size=(HEIGHT, WIDTH, 3)) for t in range(NUM_FRAMES)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def codec_videos(tmp_path_factory) -> dict:
    """``{file name: path, or why it could not be written}``, each encoded by the ffmpeg command."""
    if shutil.which("ffmpeg") is None:
        return dict.fromkeys(CODECS, "no ffmpeg command (apt-get install ffmpeg)")
    listed = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    available = {line.split()[1] for line in listed.splitlines() if len(line.split()) > 1}
    root, raw = tmp_path_factory.mktemp("codecs"), _frames().tobytes()
    videos = {}
    for name, (encoders, options) in CODECS.items():
        encoder = next((e for e in encoders if e in available), None)
        if encoder is None:
            videos[name] = f"this ffmpeg has none of the encoders {encoders}"
            continue
        command = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}",
                   "-r", str(FPS), "-i", "-", "-c:v", encoder, "-g", str(GOP), *options, "-pix_fmt", "yuv420p",
                   str(root / name)]
        subprocess.run(command, input=raw, check=True, capture_output=True)
        videos[name] = root / name
    return videos


def _video(codec_videos, name):
    if isinstance(codec_videos[name], str):
        pytest.skip(codec_videos[name])
    return codec_videos[name]


CLIPS = [
    np.arange(0, 16, 2),  # the start
    np.arange(12, 28, 2),  # the middle, across the keyframes at 16 and 24
    np.arange(NUM_FRAMES - 8, NUM_FRAMES),  # the end
    np.array([7, 8, 9]),  # either side of a keyframe
    (30 + np.arange(8) * 2) % NUM_FRAMES,  # a looping clip: 30, ..., 38, 0, ..., 4
    np.array([17, 5, 5, 39, 0]),  # repeats, out of order
]


@pytest.mark.parametrize("name", sorted(CODECS))
def test_frames_and_indices_equal_the_fast_decoders(codec_videos, name):
    path = _video(codec_videos, name)
    with open_video(path, "fast") as fast, open_video(path, "torchcodec") as video:
        assert (video.num_frames, video.fps) == (fast.num_frames, fast.fps) == (NUM_FRAMES, FPS)
        for indices in CLIPS:
            frames = video.get_frames(indices)
            assert frames.dtype == torch.uint8 and frames.shape == (len(indices), HEIGHT, WIDTH, 3)
            assert torch.equal(frames, fast.get_frames(indices)), f"{name}: indices {indices.tolist()}"


def test_an_index_past_the_last_frame_gets_the_last_frame(codec_videos):
    path = _video(codec_videos, "h264_bframes.mp4")
    with open_video(path, "torchcodec") as video:
        assert torch.equal(video.get_frames(np.array([NUM_FRAMES + 3])), video.get_frames(np.array([NUM_FRAMES - 1])))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: NVDEC would not fail")
def test_a_video_nvdec_cannot_open_is_decoded_on_the_cpu(codec_videos):
    path = _video(codec_videos, "xvid.avi")  # without a GPU, torchcodec's CUDA decoder fails to open
    with open_video(path, "torchcodec", device="cuda") as video, open_video(path, "fast") as fast:
        assert video.fallback_reason and video.device == torch.device("cpu")
        assert torch.equal(video.get_frames(CLIPS[1]), fast.get_frames(CLIPS[1]))


class _NVDEC:
    """A stand-in for torchcodec's CUDA decoder: ``cpu_fallback`` as torchcodec reports it, and
    decoding that fails as NVDEC does on a stream it cannot take."""

    def __init__(self, cpu_fallback):
        self.cpu_fallback = cpu_fallback

    def __len__(self):
        return NUM_FRAMES

    def get_frames_at(self, indices):
        raise RuntimeError("NVDEC: unsupported profile")

    def get_frame_at(self, index):
        raise RuntimeError("NVDEC: unsupported profile")


@pytest.mark.parametrize(("cpu_fallback", "reason"), [
    ("", "RuntimeError: NVDEC: unsupported profile"),  # NVDEC opened the stream, then failed on it
    ("[CUDA] Fallback status: Falling back due to: Video not supported", "Video not supported"),  # torchcodec said so
])
def test_a_video_nvdec_cannot_decode_is_decoded_on_the_cpu(codec_videos, monkeypatch, cpu_fallback, reason):
    path = _video(codec_videos, "hevc.mp4")
    real_open = TorchCodecVideo._open
    monkeypatch.setattr(TorchCodecVideo, "_open",
                        lambda self, device: _NVDEC(cpu_fallback) if str(device) == "cuda" else real_open(self, device))
    with open_video(path, "torchcodec", device="cuda") as video, open_video(path, "fast") as fast:
        frames = video.get_frames(CLIPS[2])
        assert reason in video.fallback_reason and video.device == torch.device("cpu")
        assert torch.equal(frames, fast.get_frames(CLIPS[2]))


def test_the_dataset_moves_fallen_back_clips_to_its_device_and_logs_each_video_once(codec_videos, monkeypatch,
                                                                                     caplog):
    """On a machine without a GPU, ``meta`` stands for the run's GPU: clips must arrive there."""
    paths = [_video(codec_videos, "xvid.avi"), _video(codec_videos, "h264_bframes.mp4")]
    opened = []

    def nvdec_refuses(path, decoder, device):
        opened.append((path, str(device)))
        video = open_video(path, decoder)  # what NVDEC's fallback gives: CPU frames, and why
        video.fallback_reason = "NVDEC: no decoder for this codec" if str(device) != "cpu" else ""
        return video

    monkeypatch.setattr(index_module, "open_video", nvdec_refuses)
    index = VideoIndex([VideoRecord(path, i) for i, path in enumerate(paths)], ["a", "b"])
    transform = train_transform(crop_size=32, crop_area=(0.5, 1.0), flip_ratio=0.5)  # crops and resizes on "meta"
    dataset = ClipDataset(index, clip_len=8, frame_interval=2, transforms=[transform], decoder="torchcodec",
                          device="meta")
    with caplog.at_level(logging.WARNING, logger="accel_slowfast"):
        samples = [dataset[i] for i in (0, 1, 0, 1, 0)]
    assert [str(path) for path, _ in opened] == [str(paths[i]) for i in (0, 1, 0, 1, 0)]
    assert [device for _, device in opened] == ["meta", "meta", "cpu", "cpu", "cpu"]  # NVDEC is not asked again
    warnings = [record.getMessage() for record in caplog.records if "NVDEC" in record.getMessage()]
    assert len(warnings) == 2 and all("decoding it on the CPU" in warning for warning in warnings)
    for sample in samples:
        clip = sample["video"]
        assert clip.device.type == "meta" and clip.dtype == torch.uint8 and clip.shape == (3, 8, 32, 32)
        assert sample["replaced"] is False
