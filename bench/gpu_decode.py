"""Training clips decoded per second on one GPU with NVDEC (``decoder_device: cuda``) against the
CPU path, and the CPU cores each one keeps busy.

Generates UCF101-like scenes as ``bench/data_throughput.py`` does (320x240, 25 fps, 7 s), each
written as MPEG-4/AVI, H.264 and HEVC, and times the seed's training clip (32 frames at interval
2, RandomResizedCrop to 224, flip) in batches of 8 through ``ClipDataset(decoder="torchcodec")``:

    cpu, N workers   decoding on the CPU in N DataLoader workers (one FFmpeg thread each), the
                     batch handed to the main process, as training loads with decoder_device: cpu
    cuda, main       NVDEC in the main process (decoder_device: cuda, num_workers 0): the clip is
                     decoded, cropped and resized on the GPU and stays there
    ... decode only  the same decoder's frames of each clip, no transform, in the main process

``cores`` is CPU time over wall time of the process and its workers (1.0 = one core busy);
``clips/s/core`` is what a core buys. A video NVDEC cannot take is decoded on the CPU (counted
in ``fell back``). Run from the repository root::

    python bench/gpu_decode.py                     # on a GPU machine: cpu and cuda rows
    python bench/gpu_decode.py --workers 4 8 16    # the CPU rows with more workers
    python bench/gpu_decode.py --tiny              # 64x48 px, 2 s, a few clips: a smoke run (CPU rows only
                                                   # without a GPU, plus the main-process row on the CPU)
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).parent))
import data_throughput  # noqa: E402  (the scenes, their encoding and the seed's clip)

from accel_slowfast.data import ClipDataset  # noqa: E402
from accel_slowfast.data.decoding import open_video  # noqa: E402
from accel_slowfast.data.index import VideoIndex, VideoRecord  # noqa: E402

BATCH = 8


class FallbackCounter(logging.Handler):
    """The videos NVDEC could not take: the dataset's "NVDEC cannot decode PATH ..." warnings (one
    per video), and those the decode-only rows saw."""

    def __init__(self):
        super().__init__()
        self.paths = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("NVDEC cannot decode"):
            self.paths.add(str(record.args[0]))


def clip_dataset(paths: list[Path], device: torch.device) -> ClipDataset:
    index = VideoIndex([VideoRecord(path, 0) for path in paths], ["a"])
    transform = data_throughput.train_transform(crop_size=data_throughput.CROP, crop_area=data_throughput.AREA,
                                                flip_ratio=data_throughput.FLIP)
    return ClipDataset(index, clip_len=data_throughput.CLIP_LEN, frame_interval=data_throughput.INTERVAL,
                       transforms=[transform], decoder="torchcodec", device=device)


def cpu_seconds() -> float:
    """CPU time so far of this process and its live children (the loader's workers)."""
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def timed(batches, count: int, device: torch.device) -> tuple[float, float]:
    """``(clips/s, cores)`` over ``count`` batches of ``batches`` after one warm-up batch."""
    next(batches)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronize()
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(count):
        next(batches)
    synchronize()
    wall = time.perf_counter() - start
    return count * BATCH / wall, (cpu_seconds() - cpu) / wall


def loader_batches(dataset: ClipDataset, workers: int):
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=10**6,
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=workers,
                                         collate_fn=dataset.collate, persistent_workers=workers > 0)
    return iter(loader)


def decode_only_batches(paths: list[Path], device: torch.device, fell_back: set[str]):
    """Batches of the frames each clip needs, decoded by torchcodec on ``device``, no transform."""
    rng, span = np.random.default_rng(0), data_throughput.CLIP_LEN * data_throughput.INTERVAL
    while True:
        batch = []
        for _ in range(BATCH):
            path = str(paths[rng.integers(len(paths))])
            with open_video(path, "torchcodec", device) as video:
                start = rng.integers(max(video.num_frames - span, 0) + 1)
                batch.append(video.get_frames(start + np.arange(0, span, data_throughput.INTERVAL)).to(device))
                if video.fallback_reason:
                    fell_back.add(path)
        yield batch


def codec_rows(paths: list[Path], workers: list[int], gpu: torch.device | None, fell_back: set[str]) -> dict:
    """``{row name: (a function starting its batches, the device they end on)}`` for one codec's videos."""
    cpu = torch.device("cpu")
    main_device = gpu or cpu
    rows = {f"cpu, {n} worker{'s' * (n > 1)}": (lambda n=n: loader_batches(clip_dataset(paths, cpu), n), cpu)
            for n in workers}
    rows[f"{main_device.type}, main"] = (lambda: loader_batches(clip_dataset(paths, main_device), 0), main_device)
    rows["cpu, decode only"] = (lambda: decode_only_batches(paths, cpu, fell_back), cpu)
    if gpu:
        rows["cuda, decode only"] = (lambda: decode_only_batches(paths, gpu, fell_back), gpu)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--batches", type=int, default=20, help="batches of 8 clips timed per row")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="DataLoader workers of the CPU rows (default: 1 and every core)")
    parser.add_argument("--codecs", nargs="+", default=["mpeg4", "h264", "hevc"],
                        choices=sorted(data_throughput.CODECS))
    parser.add_argument("--tiny", action="store_true", help="64x48 px, 2 s videos, 2 batches per row: a smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        data_throughput.WIDTH, data_throughput.HEIGHT, data_throughput.SECONDS = 64, 48, 2
        data_throughput.CROP, args.videos, args.batches = 32, 3, 2
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or sorted({1, cores})
    gpu = torch.device("cuda") if torch.cuda.is_available() else None
    counter = FallbackCounter()
    logging.getLogger("accel_slowfast").addHandler(counter)
    torch.set_num_threads(1)  # each row's own parallelism is its workers (CPU) or the GPU

    name = torch.cuda.get_device_name(0) if gpu else "no GPU: the main-process row decodes on the CPU"
    print(f"{args.videos} videos {data_throughput.WIDTH}x{data_throughput.HEIGHT}, {data_throughput.SECONDS} s; "
          f"clip {data_throughput.CLIP_LEN}x{data_throughput.INTERVAL} to {data_throughput.CROP} px, batch {BATCH}; "
          f"{args.batches} batches per row; {cores} CPU cores; {name}")
    with tempfile.TemporaryDirectory() as tmp:
        all_paths = data_throughput.generate(Path(tmp), args.videos, seed=0, codecs=tuple(args.codecs))
        print(f"{'codec':<6} {'row':<24} {'clips/s':>8} {'cores':>6} {'clips/s/core':>13} {'fell back':>10}")
        for codec, paths in all_paths.items():
            rows = codec_rows(paths, workers, gpu, counter.paths)
            for row, (batches, device) in rows.items():
                counter.paths.clear()
                rate, busy = timed(batches(), args.batches, device)
                print(f"{codec:<6} {row:<24} {rate:8.1f} {busy:6.2f} {rate / busy:13.1f} {len(counter.paths):10d}")


if __name__ == "__main__":
    main()
