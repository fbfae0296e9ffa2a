"""The seed's training clip from one set of scenes stored five ways: which data source loads fastest?

Renders ``--scenes`` scenes (``data_throughput.render``: a panning textured scene, moving blobs,
sensor grain; ``--seconds`` long at 25 fps) as the original videos of ``--source``:

    h264-1280x720   H.264 (libx264, x264's defaults), a keyframe every 250 frames and no extra
                    keyframe at scene cuts: camera and web video (the default)
    h264-640x480    the same at 640x480
    mpeg4-320x240   UCF101-like: MPEG-4 part 2 in AVI, a keyframe every 12 frames, ~0.5 Mbit/s

and times the seed's training clip (32 frames at interval 2, RandomResizedCrop area 0.08-1 to
224, flip 0.5; decoder ``--decoder``) from the same scenes as

    (i)   the original videos (``dataset: folders``)
    (ii)  ``accel-slowfast data prepare``'s videos: short side 256, H.264, a keyframe every 16 frames
    (iii) ``data prepare --to frames``'s JPEG frame folders at short side 256 (``dataset: rawframes``)
    (iv)  a Parquet dataset with the original videos' bytes embedded (``dataset: hf``)
    (v)   the originals with ``num_repeats: 2, sample_once: true``: one position, two augmentations
    (v')  the originals with ``num_repeats: 2``: two positions (for information; no target)

Each row loads in one DataLoader worker (one torch thread). Rows take turns in ``--rounds``
rounds and medians are printed, so load from other jobs on the machine hits every row alike;
while a row is timed the other rows' workers are paused (SIGSTOP), so a worker's prefetching
neither runs in another row's time nor gets done for free between its own turns. CPU ms per
clip counts the main process and the row's worker. Each row prints its ratio to (i), in clips/s
and in CPU per clip, and whether the issue's target holds: (ii) >= 1.5x (i) for sources with a
keyframe every 250 frames, (iii) and (iv) >= 0.9x, (v) >= 1.6x. Run it from the repository root::

    OMP_NUM_THREADS=1 python bench/data_sources.py [--source mpeg4-320x240] [--scenes 4] [--clips 24] [--rounds 4]
"""

import argparse
import gc
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import psutil
import torch
from data_throughput import AREA, CLIP_LEN, CROP, FLIP, FPS, INTERVAL, cpu_seconds, endless, render, write_video

from accel_slowfast.data import ClipDataset
from accel_slowfast.data.frames import read_rawframe_list
from accel_slowfast.data.prepare import prepare
from accel_slowfast.data.readers import read_class_folders, read_list_file
from accel_slowfast.data.transforms import train_transform

SOURCES = {  # name: (width, height, codec, frames from one keyframe to the next)
    "h264-1280x720": (1280, 720, "h264", 250),
    "h264-640x480": (640, 480, "h264", 250),
    "mpeg4-320x240": (320, 240, "mpeg4", 12),  # data_throughput's UCF101-like videos
}
TARGETS = {"(ii)": 1.5, "(iii)": 0.9, "(iv)": 0.9, "(v)": 1.6}  # clips/s as a multiple of (i)'s
SHORT_SIDE = 256  # data prepare's default, mmaction2's resize_videos.py --scale 256
CLASSES = 2


def write_scene(path: Path, seed: int, scene: int, source: str, size: tuple[int, int], seconds: int) -> int:
    """Render scene ``scene`` and write it as ``source``'s original video at ``path``; returns its bytes."""
    frames = render(np.random.default_rng([seed, scene]), *size, seconds)
    if SOURCES[source][2] == "mpeg4":
        write_video(path, frames, "mpeg4")
        return path.stat().st_size
    with av.open(str(path), mode="w") as container:
        # sc_threshold 0: no keyframe at scene cuts, so keyframes stay 250 frames apart as gop_size says
        stream = container.add_stream("libx264", rate=FPS, options={"sc_threshold": "0"})
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], "yuv420p"
        stream.codec_context.gop_size = SOURCES[source][3]
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path.stat().st_size


def parquet_index(videos, folder: Path):
    """(iv): ``videos``' bytes embedded in a Parquet shard (the Hub's layout), read back as ``dataset: hf`` does."""
    import datasets
    from datasets.table import embed_table_storage

    from accel_slowfast.data.hf import HFVideoIndex, load_hf_dataset

    datasets.disable_progress_bars()
    datasets.config.HF_DATASETS_CACHE = folder / "cache"  # load_dataset's Arrow copy, thrown away with the folder
    features = datasets.Features(video=datasets.Video(), label=datasets.ClassLabel(names=videos.classes))
    table = datasets.Dataset.from_dict({"video": list(videos.paths), "label": videos.labels.tolist()},
                                       features=features)
    table = table.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    table.to_parquet(folder / "parquet" / "data" / "train-00000-of-00001.parquet")
    name = str(folder / "parquet")
    return HFVideoIndex(load_hf_dataset(name), name, "train")


def folder_bytes(path: Path) -> float:
    """MiB under ``path`` (a file or a folder)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def clip_loader(index, decoder: str, seed: int, num_repeats: int = 1, sample_once: bool = False):
    """The training clips of ``index`` from one persistent DataLoader worker, one clip at a time
    (a repeated item's clips one after the other)."""
    dataset = ClipDataset(index, clip_len=CLIP_LEN, frame_interval=INTERVAL, clip_sampling="random",
                          transforms=[train_transform(crop_size=CROP, crop_area=AREA, flip_ratio=FLIP)],
                          decoder=decoder, num_repeats=num_repeats, sample_once=sample_once)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=10**6,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=1,
                                         persistent_workers=True)
    return lambda: (clip for item in loader for clip in (item if num_repeats > 1 else [item]))


def measure(rows: dict, clips: int, rounds: int) -> dict[str, tuple[float, float]]:
    """``(clips/s, CPU ms per clip)`` per row, medians over ``rounds`` rounds in which the rows take
    turns; each row's worker runs only during its own turn (the others are paused)."""
    streams, workers = {}, {}
    for name, factory in rows.items():
        before = set(psutil.Process().children(recursive=True))
        streams[name] = endless(factory)
        next(streams[name])  # warm-up: the worker starts, imports, opens a first file
        workers[name] = set(psutil.Process().children(recursive=True)) - before
        for worker in workers[name]:
            worker.suspend()
    rates, costs = {name: [] for name in rows}, {name: [] for name in rows}
    per_round = max(clips // rounds, 1)
    for _ in range(rounds):
        for name, stream in streams.items():
            for worker in workers[name]:
                worker.resume()
            start, cpu = time.perf_counter(), cpu_seconds()
            for _ in range(per_round):
                next(stream)
            rates[name].append(per_round / (time.perf_counter() - start))
            costs[name].append(1000 * (cpu_seconds() - cpu) / per_round)
            for worker in workers[name]:
                worker.suspend()
    for name in rows:  # resumed, so that the loaders can shut their workers down
        for worker in workers[name]:
            worker.resume()
    return {name: (float(np.median(rates[name])), float(np.median(costs[name]))) for name in rows}


def verdict(row: str, ratio: float, gop: int) -> str:
    """The issue's target for ``row`` and whether ``ratio`` (clips/s over (i)'s) meets it."""
    if row not in TARGETS:
        return "(no target)"
    target = f">= {TARGETS[row]}x"
    if row == "(ii)" and gop != 250:
        return f"{target} is for a keyframe every 250 frames; this source has one every {gop}"
    return f"{target}: {'holds' if ratio >= TARGETS[row] else 'MISSES'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=sorted(SOURCES), default="h264-1280x720", help="the original videos")
    parser.add_argument("--scenes", type=int, default=4, help="scenes rendered (one video each)")
    parser.add_argument("--seconds", type=int, default=10, help="length of a scene")
    parser.add_argument("--clips", type=int, default=24, help="clips timed per row")
    parser.add_argument("--rounds", type=int, default=4, help="rounds the rows take turns in")
    parser.add_argument("--decoder", choices=("fast", "torchcodec", "pyav"), default="fast",
                        help="the video decoder of every row but (iii)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="processes that render the scenes and run data prepare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="2 scenes of 64x48, 2 s, 4 clips a row: a smoke run")
    args = parser.parse_args(argv)
    width, height, codec, gop = SOURCES[args.source]
    if args.tiny:
        width, height, args.scenes, args.seconds, args.clips, args.rounds = 64, 48, 2, 2, 4, 2
    torch.manual_seed(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        suffix = ".avi" if codec == "mpeg4" else ".mp4"
        paths = [tmp / "originals" / f"class{i % CLASSES}" / f"scene{i:03d}{suffix}" for i in range(args.scenes)]
        for folder in {path.parent for path in paths}:
            folder.mkdir(parents=True)
        start = time.perf_counter()
        with ProcessPoolExecutor(min(args.processes, args.scenes)) as pool:
            list(pool.map(write_scene, paths, [args.seed] * args.scenes, range(args.scenes),
                          [args.source] * args.scenes, [(width, height)] * args.scenes, [args.seconds] * args.scenes))
        print(f"{args.scenes} scenes {width}x{height}, {FPS} fps, {args.seconds} s, as {args.source} "
              f"(a keyframe every {gop} frames): {folder_bytes(tmp / 'originals'):.1f} MiB, "
              f"rendered in {time.perf_counter() - start:.0f} s")
        originals = read_class_folders(tmp / "originals")
        for to, out in (("videos", "videos_256"), ("frames", "rawframes")):  # each writes its list beside it: OUT.txt
            start = time.perf_counter()
            prepare(tmp / "originals", tmp / out, to=to, short_side=SHORT_SIDE, processes=args.processes,
                    stream=io.StringIO())
            print(f"data prepare --to {to}: {folder_bytes(tmp / out):.1f} MiB in {time.perf_counter() - start:.0f} s")
        prepared = read_list_file(tmp / "videos_256.txt", tmp / "videos_256", originals.classes)
        frames = read_rawframe_list(tmp / "rawframes.txt", tmp / "rawframes", originals.classes)
        start = time.perf_counter()
        embedded = parquet_index(originals, tmp / "hf")
        print(f"Parquet with the originals' bytes: {folder_bytes(tmp / 'hf' / 'parquet'):.1f} MiB in "
              f"{time.perf_counter() - start:.0f} s")
        print(f"clip {CLIP_LEN}x{INTERVAL} frames, RandomResizedCrop to {CROP}, flip; decoder {args.decoder}; "
              f"one DataLoader worker a row, torch threads 1; {args.clips} clips a row in {args.rounds} rounds; "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
        sys.stdout.flush()

        rows = {
            "(i) original videos": clip_loader(originals, args.decoder, args.seed),
            "(ii) data prepare --to videos": clip_loader(prepared, args.decoder, args.seed),
            "(iii) data prepare --to frames": clip_loader(frames, args.decoder, args.seed),
            "(iv) Parquet, bytes embedded": clip_loader(embedded, args.decoder, args.seed),
            "(v) num_repeats 2, sample_once": clip_loader(originals, args.decoder, args.seed, 2, True),
            "(v') num_repeats 2, two positions": clip_loader(originals, args.decoder, args.seed, 2),
        }
        measured = measure(rows, args.clips, args.rounds)
        rows.clear()
        gc.collect()  # the loaders stop their workers now, before the files they prefetch from are deleted
        base_rate, base_cost = measured["(i) original videos"]
        print(f"{'row':<34} {'clips/s':>8} {'CPU ms/clip':>12} {'x (i) clips/s':>14} {'x (i) CPU':>10}  target")
        for name, (rate, cost) in measured.items():
            ratio = rate / base_rate
            print(f"{name:<34} {rate:8.2f} {cost:12.1f} {ratio:13.2f}x {base_cost / cost:9.2f}x  "
                  f"{verdict(name.split()[0], ratio, gop)}")
        print(f"\nload average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
