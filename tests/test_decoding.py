"""Every decoder returns bitwise a sequential decode's frames, on real files that need seeking."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from conftest import decoder_params

from accel_slowfast.data.decoding import DECODERS, open_video
from accel_slowfast.data.pyav_decoding import PyAVSequential

NUM_FRAMES, FPS = 40, 25
FAST_DECODERS = decoder_params(set(DECODERS) - {"pyav"})


def _frames(seed: int, height: int = 32, width: int = 48) -> np.ndarray:
    """A drifting texture with a little grain: inter-coded like camera video, not all keyframes."""
    rng = np.random.default_rng(seed)
    texture = np.kron(rng.integers(40, 216, size=(height // 4 + 1, width // 4 + 1 + NUM_FRAMES, 3)), np.ones((4, 4, 1)))
    frames = [texture[:height, t:t + width] + rng.normal(0, 2, size=(height, width, 3)) for t in range(NUM_FRAMES)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _write(path, frames: np.ndarray, codec: str, gop: int, first_pts: int = 0, b_frames: int = 0) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = gop, b_frames
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = first_pts + i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


VIDEOS = {  # name: (codec, GOP, first pts, B-frames)
    "mpeg4.avi": ("mpeg4", 6, 0, 0),  # UCF101's container and codec
    "h264.mp4": ("libx264", 8, 0, 2),  # frames decode out of order
    "late_start.mp4": ("mpeg4", 5, 7, 0),  # the stream starts at 0.28 s, not 0
    "no_count.mkv": ("libx264", 8, 7, 0),  # Matroska: no frame count, no stream duration, late start
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("decoding")
    paths = {}
    for i, (name, (codec, gop, first_pts, b_frames)) in enumerate(VIDEOS.items()):
        if codec not in av.codecs_available:
            continue
        paths[name] = root / name
        _write(paths[name], _frames(i), codec, gop, first_pts, b_frames)
    return paths


def _video(videos, name):
    if name not in videos:
        pytest.skip(f"PyAV has no encoder for {name}")
    return videos[name]


def _index_sets(num_frames: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    last = num_frames - 1
    sets = [
        np.array([0]), np.array([last]), np.array([last, 0]), np.arange(num_frames),
        (30 + np.arange(8) * 2) % num_frames,  # a looping clip: 30, 32, ..., 38, 0, 2, 4
        np.array([5, 5, 5, 3, 3, 17]),  # repeats, out of order
        np.array([13, 27, 13, last, 27]),
    ]
    sets += [np.sort(rng.choice(num_frames, size=6, replace=False)) for _ in range(4)]
    sets += [rng.integers(0, num_frames, size=8) for _ in range(4)]
    return sets


@pytest.mark.parametrize("decoder", FAST_DECODERS)
@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_frames_equal_the_reference(videos, name, decoder):
    path = _video(videos, name)
    with PyAVSequential(path) as reference, open_video(path, decoder) as video:
        assert (video.num_frames, video.fps) == (reference.num_frames, reference.fps) == (NUM_FRAMES, FPS)
        for indices in _index_sets(NUM_FRAMES):
            expected = reference.get_frames(indices)
            frames = video.get_frames(indices)
            assert frames.dtype == torch.uint8 and frames.shape == (len(indices), 32, 48, 3)
            assert torch.equal(frames, expected), f"{name}, {decoder}: indices {indices.tolist()}"


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
def test_frames_are_the_encoded_frames_in_order(videos, decoder):
    path = _video(videos, "mpeg4.avi")
    with av.open(str(path)) as container:
        decoded = np.stack([frame.to_rgb().to_ndarray() for frame in container.decode(video=0)])  # (T, H, W, 3)
    indices = np.array([39, 0, 21, 20, 20, 6])
    with open_video(path, decoder) as video:
        frames = video.get_frames(indices)  # (T, H, W, C)
    np.testing.assert_array_equal(frames.numpy(), decoded[indices])


@pytest.mark.parametrize("decoder", FAST_DECODERS)
def test_one_decoder_serves_many_clips_in_any_order(videos, decoder):
    path = _video(videos, "h264.mp4")
    with PyAVSequential(path) as reference, open_video(path, decoder) as video:
        for indices in ([30, 32, 34], [2, 4, 6], [39], [0], [18, 9]):  # backwards seeks too
            assert torch.equal(video.get_frames(np.array(indices)), reference.get_frames(np.array(indices)))


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
def test_closing_releases_the_file(videos, decoder):
    with open_video(_video(videos, "mpeg4.avi"), decoder) as video:
        video.get_frames(np.array([3]))
    with pytest.raises(Exception):  # noqa: B017 - whatever PyAV raises on a closed container
        video.get_frames(np.array([3]))


def test_unknown_decoder_names_the_choices(videos):
    with pytest.raises(ValueError, match="pyav"):
        open_video(_video(videos, "mpeg4.avi"), "nope")


@pytest.mark.parametrize("decoder", ["pyav", "fast"])
def test_pyav_decoders_refuse_a_gpu(videos, decoder):
    with pytest.raises(ValueError, match="decoder 'torchcodec' decodes on cuda"):
        open_video(_video(videos, "mpeg4.avi"), decoder, device="cuda")


@pytest.mark.parametrize(("name", "indices", "keyframe"), [
    ("mpeg4.avi", [33, 35], 30), ("h264.mp4", [27, 29, 31], 24), ("late_start.mp4", [12], 10),
    ("no_count.mkv", [17, 39], 16),
])
def test_fast_decoder_starts_at_the_keyframe_before_the_clip_and_stops_after_it(videos, name, indices, keyframe):
    path = _video(videos, name)
    with av.open(str(path)) as container:
        index_of = {frame.pts: i for i, frame in enumerate(container.decode(video=0))}

    class Recording:  # the container, noting each frame it decodes
        def __init__(self, container):
            self.container, self.decoded = container, []

        def seek(self, *args, **kwargs):
            self.container.seek(*args, **kwargs)

        def decode(self, *args):
            for frame in self.container.decode(*args):
                self.decoded.append(index_of[frame.pts])
                yield frame

    with open_video(path, "fast") as video:
        video._container = recording = Recording(video._container)
        video.get_frames(np.array(indices))
        video._container = recording.container
    assert recording.decoded[0] == keyframe and max(recording.decoded) == max(indices)


def _write_size_change(path, segments: list[np.ndarray]) -> None:
    """One MPEG-4 stream whose frame size changes between ``segments`` (each encoded on its own,
    with the size in-band, as a spliced or re-encoded file has it)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = segments[0].shape[2], segments[0].shape[1], "yuv420p"
        pts = 0
        for frames in segments:
            encoder = av.CodecContext.create("mpeg4", "w")
            encoder.width, encoder.height, encoder.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            encoder.time_base, encoder.framerate = Fraction(1, FPS), FPS
            for array in [*frames, None]:
                frame = None
                if array is not None:
                    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                    frame.pts, frame.time_base, pts = pts, Fraction(1, FPS), pts + 1
                for packet in encoder.encode(frame):
                    packet.stream = stream
                    container.mux(packet)


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
def test_a_frame_size_change_mid_stream_is_resized_to_the_first_frames_size(tmp_path, decoder):
    first, second = np.full((20, 32, 48, 3), 60, np.uint8), np.full((20, 48, 64, 3), 200, np.uint8)
    path = tmp_path / "size_change.avi"
    _write_size_change(path, [first, second])
    with open_video(path, decoder) as video:
        assert video.num_frames == 40
        frames = video.get_frames(np.arange(0, 40, 4))  # across the change
    assert frames.shape == (10, 32, 48, 3) and frames.dtype == torch.uint8
    means = frames.float().mean(dim=(1, 2, 3))
    assert (means[:5] - 60).abs().max() < 8 and (means[5:] - 200).abs().max() < 8  # resized, not garbage
    with open_video(path, "pyav") as reference:
        assert torch.equal(frames, reference.get_frames(np.arange(0, 40, 4)))


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
@pytest.mark.parametrize("holder", [bytes, memoryview, bytearray])
def test_a_video_held_in_memory_decodes_as_its_file_does(videos, decoder, holder):
    path = _video(videos, "h264.mp4")
    indices = np.array([30, 2, 17, 17, 39])
    with open_video(path, decoder) as from_file:
        expected, count = from_file.get_frames(indices), from_file.num_frames
    with open_video(holder(path.read_bytes()), decoder) as video:  # e.g. a datasets Video row's bytes
        assert (video.num_frames, video.fps) == (count, FPS) and "in memory" in video.path
        assert torch.equal(video.get_frames(indices), expected)
