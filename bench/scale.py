"""Start-up time and data-worker memory as the index grows towards Kinetics' 650k videos.

What must not grow with the number of videos: the time from ``python train.py`` to the first
training iteration once the index is probed and cached, and each data-loader worker's private
memory. For each size this makes a ``list`` dataset (the Kinetics recipes' kind: 400 class
folders, a validation list a tenth of the training list) whose entries are hard links to a few
real tiny videos (40x32, 16 frames, written with PyAV), then measures:

    cold     ``python train.py`` with an empty cache (every video is probed), from the start of
             the process to the first training record in metrics.jsonl (``log_interval: 1``)
    cached   the same command again: the probe cache is read
    USS      in this process: the training set as ``train.py`` builds it (``build_indexes`` +
             ``build_datasets``), a DataLoader with 2 persistent workers over ``--clips`` clips
             spread evenly over the index (at 200k every 50th video: consecutive reads are
             ~3 KiB apart in the paths buffer, so the pass reads every page of the index), then
             each worker's unique set size, Private_Clean + Private_Dirty of
             ``/proc/<pid>/smaps_rollup``, after its first batch and after the pass

The pass decodes the same number of clips at every size: a worker's memory also grows with the
clips it has decoded (allocator arenas, ~12 MiB after its first batch, ~16-22 MiB from about a
thousand clips on, whatever the index), which a fixed stride would mix into the comparison.

Run from the repository root (about 8 minutes on 2 CPU cores, a third of it probing 220k videos)::

    python bench/scale.py [--sizes 2000 50000 200000] [--clips 4000] [--tiny]

Worker memory that grows with the size is a per-video Python object read in the worker.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from accelerate import Accelerator

from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE
from accel_slowfast.data.builders import build_datasets, build_indexes
from accel_slowfast.data.dataset import share_by_filename
from accel_slowfast.data.synthetic import write_video
from accel_slowfast.recipe.recipe import Recipe

MIB = 2**20
CLASSES, SOURCES = 400, 8
REPO = Path(__file__).resolve().parents[1]
RECIPE = dict(dataset="list", num_classes=CLASSES, model="slowfast_tiny", clip_len=8, frame_interval=1, short_side=32,
              crop_size=32, test_crop_size=32, batch_size=4, num_workers=2, decoder="fast", max_epochs=1,
              log_interval=1)


def make_dataset(root: Path, sizes: list[int]) -> dict[int, tuple[Path, Path]]:
    """Hard links for the largest size, and ``(train list, val list)`` per size (its first entries)."""
    root.mkdir()
    sources = []
    for i in range(SOURCES):
        frames = np.random.default_rng(i).integers(0, 255, size=(16, 32, 40, 3), dtype=np.uint8)
        sources.append(root / f"source_{i}.avi")
        write_video(sources[-1], frames, fps=25)
    entries = {}
    for split, count in (("train", max(sizes)), ("val", max(sizes) // 10)):
        for cls in range(CLASSES):
            (root / split / f"c{cls:03d}").mkdir(parents=True)
        entries[split] = [f"{split}/c{i % CLASSES:03d}/{i:07d}.avi {i % CLASSES}" for i in range(count)]
        for i, entry in enumerate(entries[split]):
            os.link(sources[i % SOURCES], root / entry.split()[0])
    lists = {}
    for size in sizes:
        lists[size] = (root / f"train_{size}.txt", root / f"val_{size}.txt")
        for path, split, count in zip(lists[size], ("train", "val"), (size, size // 10), strict=True):
            path.write_text("\n".join(entries[split][:count]) + "\n")
    return lists


def startup_seconds(args: list[str], work_dir: Path, cache: Path) -> float:
    """Seconds from launching ``train.py`` to its first training record; the run is then stopped."""
    env = {**os.environ, "ACCEL_SLOWFAST_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    metrics = work_dir / "metrics.jsonl"
    start = time.perf_counter()
    run = subprocess.Popen([sys.executable, "train.py", *args, f"--work_dir={work_dir}"], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        while not (metrics.exists() and '"mode": "train"' in metrics.read_text()):
            if run.poll() is not None:
                raise RuntimeError(f"train.py exited with {run.returncode}:\n{run.stderr.read().decode()[-3000:]}")
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # its data-loader workers too
        run.wait()


def uss_mib(pid: int) -> float:
    fields = dict(line.split(":") for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[key].split()[0]) for key in ("Private_Clean", "Private_Dirty")) / 1024


def worker_uss(recipe: Recipe, cache: Path, clips: int) -> tuple[list[float], list[float], float]:
    """Workers' USS (MiB) after their first batch and after the pass, and the index's own size (MiB)."""
    os.environ["ACCEL_SLOWFAST_CACHE"] = str(cache)  # the cache the cold run wrote
    accelerator = Accelerator(cpu=True)
    train_set, _ = build_datasets(recipe.data_args, recipe.augmentation_args, recipe.model_args,
                                  *build_indexes(recipe.data_args, accelerator), accelerator, seed=recipe.seed,
                                  bad_video_log=Path(recipe.work_dir) / BAD_VIDEOS_FILE)
    paths = train_set.index.paths
    index_mib = (paths.buffer.nbytes + paths.offsets.nbytes + train_set.index.labels.nbytes) / MIB
    spread = np.linspace(0, len(train_set), clips, endpoint=False).astype(int).tolist()
    loader = torch.utils.data.DataLoader(train_set, batch_size=recipe.batch_size, num_workers=recipe.num_workers,
                                         sampler=spread, collate_fn=train_set.collate,
                                         worker_init_fn=share_by_filename, persistent_workers=True)
    batches = iter(loader)
    next(batches)
    workers = psutil.Process().children()
    first = [uss_mib(worker.pid) for worker in workers]
    for _ in batches:
        pass
    return first, [uss_mib(worker.pid) for worker in workers], index_mib


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 50000, 200000])
    parser.add_argument("--clips", type=int, default=4000, help="clips the USS pass decodes, spread over the index")
    parser.add_argument("--tiny", action="store_true", help="sizes 200 and 800, 200 clips")
    args = parser.parse_args(argv)
    if args.tiny:
        args.sizes, args.clips = [200, 800], 200

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lists = make_dataset(tmp / "data", args.sizes)
        print(f"list dataset, {CLASSES} classes, hard links to {SOURCES} videos (40x32, 16 frames); slowfast_tiny, "
              f"batch 4, 2 workers, decoder fast; USS pass: {args.clips} clips; {os.cpu_count()} CPUs, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'videos':>8} {'index (MiB)':>11} {'cold start (s)':>14} {'cached start (s)':>16} "
              f"{'worker USS, first batch (MiB)':>30} {'after the pass (MiB)':>21}", flush=True)
        for size in args.sizes:
            train_list, val_list = lists[size]
            values = dict(RECIPE, data_root=str(tmp / "data"), train_list=str(train_list), val_list=str(val_list))
            cli = [f"--{key}={value}" for key, value in values.items()]
            cache = tmp / f"cache_{size}"
            cold = startup_seconds(cli, tmp / f"run_{size}_cold", cache)
            cached = startup_seconds(cli, tmp / f"run_{size}_cached", cache)
            first, last, index_mib = worker_uss(Recipe(**values, work_dir=str(tmp / f"run_{size}_uss")), cache,
                                                args.clips)
            print(f"{size:>8} {index_mib:>11.2f} {cold:>14.1f} {cached:>16.1f} "
                  f"{' / '.join(f'{x:.1f}' for x in first):>30} {' / '.join(f'{x:.1f}' for x in last):>21}",
                  flush=True)


if __name__ == "__main__":
    main()
