"""Training-clip throughput of one data-loading process: pytorchvideo's pipeline vs our decoders.

Generates UCF101-like videos (320x240, 25 fps, MPEG-4 in AVI, 7 s of panning texture with
moving blobs and sensor grain, so they compress like camera footage rather than flat colour)
into a temporary folder, then times the seed's training clip (32 frames at interval 2, short
side 256, RandomResizedCrop area 0.08-1 to 224, flip 0.5, normalize) through:

    (a) pytorchvideo 0.1.5 ``labeled_video_dataset``: default PyAV decoder, RandomClipSampler
        of 64/25 s, the seed's transform from pytorchvideo transforms via ApplyTransformToKey
    (b) ``accel_slowfast.data.ClipDataset`` with ``decoder="pyav"`` (the reference decoder)
    (c) ``ClipDataset`` with ``decoder="fast"``
    (d) the decode limit: the fast decoder's ``get_frames`` of the same 32 frames (uint8), no
        transform; it delivers a 224² window of them, the bytes (c) delivers
    (e) ``ClipDataset`` with ``decoder="torchcodec"`` (when torchcodec and FFmpeg load)
    (f) torchcodec's decode limit, as (d)

``--codecs h264 hevc`` also encodes the same scenes as H.264 and HEVC in MP4 (a keyframe every
2 s, as streaming sites encode; B-frames) and times rows (c)-(f) on them: which decoder is
faster depends on the codec.

Rows (b) and (c) end with uint8 clips: our pipeline normalizes in the model, on its device, as
mmaction2 1.x's data preprocessor does (``accel_slowfast.models.builders.SlowFast``); (a) normalizes on
the CPU, as pytorchvideo's pipeline does.

Each row prints clips/s, wall ms per clip and CPU ms per clip (the main process and its workers
together: on a shared machine the steadier figure). Every row loads in ONE process: by default
one DataLoader worker (``num_workers=1``, torch's one thread per worker; each clip also crosses to
the main process through shared memory, as in training), or the main process with
``--num-workers 0`` (torch free to use every core, nothing crosses processes).
Run it from the repository root::

    python bench/data_throughput.py [--videos 12] [--clips 48] [--num-workers 1] [--codecs mpeg4 h264 hevc]
"""

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import psutil
import torch

import accel_slowfast  # noqa: F401  (first: makes pytorchvideo.transforms importable)
from accel_slowfast.data import ClipDataset
from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.transforms import train_transform
from accel_slowfast.models.builders import IMAGENET_MEAN, IMAGENET_STD

WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 25, 7
CLIP_LEN, INTERVAL, SHORT_SIDE, CROP, AREA, FLIP = 32, 2, 256, 224, (0.08, 1.0), 0.5


def _smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A ``(H, W, 3)`` float texture with detail at several scales (like a scene, not noise)."""
    texture = torch.zeros(1, 3, height, width)
    for cell, weight in ((64, 60.0), (16, 30.0), (4, 15.0), (2, 8.0)):
        coarse = torch.from_numpy(rng.normal(0, weight, size=(1, 3, height // cell + 2, width // cell + 2)))
        texture += torch.nn.functional.interpolate(coarse.float(), size=(height, width), mode="bicubic")
    return texture[0].permute(1, 2, 0).numpy() + 128


def render(rng: np.random.Generator, width: int = 0, height: int = 0, seconds: int = 0) -> np.ndarray:
    """One video ``(T, H, W, 3)`` uint8 at ``FPS``: a panning scene, moving blobs, grain; each size left 0
    is the module's (``WIDTH``, ``HEIGHT``, ``SECONDS``: UCF101-like, read when called, as tiny modes set them)."""
    width, height, seconds = width or WIDTH, height or HEIGHT, seconds or SECONDS
    frames_n = FPS * seconds
    velocity = rng.uniform(-1.5, 1.5, size=2)  # camera pan, pixels per frame
    margin = np.ceil(np.abs(velocity) * frames_n).astype(int) + 1
    scene = _smooth_noise(rng, height + margin[0], width + margin[1])
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    blobs = [(rng.uniform(0, height), rng.uniform(0, width), rng.uniform(-3, 3, size=2), rng.uniform(15, 40),
              rng.uniform(-90, 90, size=3)) for _ in range(3)]
    video = np.empty((frames_n, height, width, 3), np.uint8)
    for t in range(frames_n):
        y0, x0 = (np.where(velocity > 0, 0, margin - 1) + velocity * t).astype(int)
        frame = scene[y0:y0 + height, x0:x0 + width].copy()
        for cy, cx, (vy, vx), radius, colour in blobs:  # actors: soft discs moving across the scene
            bump_y = np.exp(-((ys - (cy + vy * t) % height) ** 2) / (2 * radius**2))
            bump_x = np.exp(-((xs - (cx + vx * t) % width) ** 2) / (2 * radius**2))
            frame += (bump_y * bump_x)[..., None] * colour
        frame += rng.normal(0, 2, size=frame.shape)  # sensor grain
        video[t] = np.clip(frame, 0, 255)
    return video


CODECS = {  # name: (PyAV encoder, file suffix, GOP, encoder options)
    "mpeg4": ("mpeg4", ".avi", 12, {}),  # UCF101's: XviD-like MPEG-4 part 2, FFmpeg's 12-frame GOP
    "h264": ("libx264", ".mp4", 2 * FPS, {}),
    "hevc": ("libx265", ".mp4", 2 * FPS, {"x265-params": "log-level=error"}),
}


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4") -> None:
    """``frames`` in ``codec`` (a key of ``CODECS``), at their size; MPEG-4 at UCF101's bit rate (~0.5 Mbit/s)."""
    encoder, _, gop, options = CODECS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=FPS, options=options)
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "mpeg4":
            stream.bit_rate = 500_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def generate(out_dir: Path, count: int, seed: int, codecs: tuple[str, ...] = ("mpeg4",)) -> dict[str, list[Path]]:
    """``count`` rendered scenes, each written once per codec: ``{codec: paths}``."""
    paths = {codec: [] for codec in codecs}
    for i in range(count):
        frames = render(np.random.default_rng([seed, i]))
        for codec in codecs:
            folder = out_dir / codec
            folder.mkdir(exist_ok=True)
            paths[codec].append(folder / f"v_Bench_g{i // 4 + 1:02d}_c{i % 4 + 1:02d}{CODECS[codec][1]}")
            write_video(paths[codec][-1], frames, codec)
    return paths


def pytorchvideo_loader(paths: list[Path], out_dir: Path, num_workers: int):
    """(a): pytorchvideo 0.1.5's own pipeline, as its UCF101/Kinetics tutorials build it."""
    from pytorchvideo.data import labeled_video_dataset, make_clip_sampler
    from pytorchvideo.transforms import (
        ApplyTransformToKey,
        Normalize,
        RandomResizedCrop,
        ShortSideScale,
        UniformTemporalSubsample,
    )
    from torchvision.transforms import Compose, RandomHorizontalFlip

    listing = out_dir / "list.txt"
    listing.write_text("".join(f"{path} {i % 4}\n" for i, path in enumerate(paths)))
    transform = ApplyTransformToKey("video", Compose([
        UniformTemporalSubsample(CLIP_LEN),  # 64 decoded frames -> 32, interval 2
        ShortSideScale(SHORT_SIDE),
        RandomResizedCrop(target_height=CROP, target_width=CROP, scale=AREA, aspect_ratio=(3 / 4, 4 / 3)),
        RandomHorizontalFlip(FLIP),
        Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]))
    dataset = labeled_video_dataset(str(listing), make_clip_sampler("random", CLIP_LEN * INTERVAL / FPS),
                                    transform=transform, decode_audio=False)
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers,
                                       persistent_workers=num_workers > 0)


def clip_dataset(paths: list[Path], decoder: str) -> ClipDataset:
    transform = train_transform(crop_size=CROP, crop_area=AREA, flip_ratio=FLIP)
    index = VideoIndex([VideoRecord(path, i % 4) for i, path in enumerate(paths)], ["a", "b", "c", "d"])
    return ClipDataset(index, clip_len=CLIP_LEN, frame_interval=INTERVAL, transforms=[transform],
                       clip_sampling="random", decoder=decoder)


class DecodeOnly(torch.utils.data.Dataset):
    """(d), (f): the clip's frames from the dataset's decoder, with its sampling, and no transform.

    It delivers a clip of the trained size, the top-left ``CROP``² window of the decoded frames
    copied out (no resampling), so that (c) and (d) move the same bytes out of a worker.
    """

    def __init__(self, dataset: ClipDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> torch.Tensor:
        record, rng = self.dataset.index.records[idx], np.random.default_rng(idx)
        with open_video(record.path, self.dataset.decoder) as video:
            frames = video.get_frames(self.dataset.frame_indices(video.num_frames, rng).reshape(-1))
        return frames[:, :CROP, :CROP].clone()


def endless(loader_factory):
    """Clips from a loader, started again whenever it runs out (pytorchvideo's ends per pass)."""
    while True:
        yield from loader_factory()


def cpu_seconds() -> float:
    """CPU time so far of this process and its live children (the loaders' workers)."""
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def measure(rows: dict, clips: int, rounds: int) -> dict[str, tuple[float, float]]:
    """``(clips/s, CPU ms per clip)`` per row, medians over ``rounds`` rounds; rows take turns, so
    a noisy neighbour on the machine slows every row alike instead of the one that happened to run
    at the time. The CPU time (of the main process and every worker) is what a clip costs, which
    a busy machine changes far less than the wall time."""
    streams = {name: endless(factory) for name, factory in rows.items()}
    for stream in streams.values():
        next(stream)  # warm-up: imports, worker start, first file open
    rates, costs = {name: [] for name in rows}, {name: [] for name in rows}
    for _ in range(rounds):
        for name, stream in streams.items():
            start, cpu = time.perf_counter(), cpu_seconds()
            for _ in range(clips // rounds):
                next(stream)
            rates[name].append(clips // rounds / (time.perf_counter() - start))
            costs[name].append(1000 * (cpu_seconds() - cpu) / (clips // rounds))
    return {name: (float(np.median(rates[name])), float(np.median(costs[name]))) for name in rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--clips", type=int, default=48, help="clips timed per row")
    parser.add_argument("--rounds", type=int, default=4, help="rounds the rows take turns in")
    parser.add_argument("--num-workers", type=int, default=1, choices=(0, 1),
                        help="0: load in the main process; 1: in one DataLoader worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--codecs", nargs="+", default=["mpeg4"], choices=sorted(CODECS),
                        help="the codecs to time; rows (a) and (b) run on mpeg4 only")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        import torchcodec.decoders  # noqa: F401 - rows (e), (f) need it and the system FFmpeg it loads
        torchcodec_missing = ""
    except (ImportError, RuntimeError, OSError) as error:
        torchcodec_missing = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        all_paths = generate(tmp, args.videos, args.seed, tuple(args.codecs))
        print(f"{args.videos} videos {WIDTH}x{HEIGHT}, {FPS} fps, {SECONDS} s; clip {CLIP_LEN}x{INTERVAL}, {CROP} px; "
              f"{args.clips} clips per row; "
              + (f"main process (num_workers=0), torch threads {torch.get_num_threads()}" if args.num_workers == 0
                 else "one DataLoader worker (num_workers=1), torch threads 1"))
        if torchcodec_missing:
            print(f"rows (e), (f) left out: torchcodec does not load ({torchcodec_missing})")

        persistent = args.num_workers > 0

        def map_loader(dataset):
            sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=10**6,
                                                     generator=torch.Generator().manual_seed(args.seed))
            return lambda: torch.utils.data.DataLoader(dataset, batch_size=None, sampler=sampler,
                                                       num_workers=args.num_workers, persistent_workers=persistent)

        for codec in args.codecs:
            paths = all_paths[codec]
            megabytes = sum(p.stat().st_size for p in paths) / 2**20
            print(f"\n{codec} ({CODECS[codec][0]}, {CODECS[codec][1][1:].upper()}, a keyframe every "
                  f"{CODECS[codec][2]} frames, {megabytes:.1f} MiB):")
            rows = {}
            if codec == "mpeg4":
                loader_a = pytorchvideo_loader(paths, tmp, args.num_workers)
                rows["(a) pytorchvideo labeled_video_dataset"] = lambda loader=loader_a: loader
                rows["(b) ClipDataset, decoder=pyav"] = map_loader(clip_dataset(paths, "pyav"))
            rows["(c) ClipDataset, decoder=fast"] = map_loader(clip_dataset(paths, "fast"))
            rows["(d) fast decode only, no transform"] = map_loader(DecodeOnly(clip_dataset(paths, "fast")))
            if not torchcodec_missing:
                rows["(e) ClipDataset, decoder=torchcodec"] = map_loader(clip_dataset(paths, "torchcodec"))
                rows["(f) torchcodec decode only"] = map_loader(DecodeOnly(clip_dataset(paths, "torchcodec")))
            measured = measure(rows, args.clips, args.rounds)
            rates = {name[:3]: rate for name, (rate, _) in measured.items()}
            for name, (rate, cost) in measured.items():
                print(f"{name:<40} {rate:7.2f} clips/s  {1000 / rate:7.1f} ms/clip  {cost:7.1f} CPU ms/clip")
            if codec == "mpeg4":
                print(f"(c)/(a) = {rates['(c)'] / rates['(a)']:.2f}x (target >= 5)   "
                      f"(c)/(d) = {rates['(c)'] / rates['(d)']:.2f}x (target >= 0.7)")
            if not torchcodec_missing:
                print(f"(e)/(c) = {rates['(e)'] / rates['(c)']:.2f}x   (f)/(d) = {rates['(f)'] / rates['(d)']:.2f}x")


if __name__ == "__main__":
    main()
