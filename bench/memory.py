"""Memory of a data-loading worker over several epochs with the fast decoder: does it grow?

PyAV leaks memory when containers are left open; ``ClipDataset`` opens every video
in a ``with`` block. This loads the seed's training clips (32 frames at interval 2, 224 px crop)
from UCF101-like videos (generated as in ``bench/data_throughput.py``) through ONE persistent
DataLoader worker -- the same process for every epoch, the strict case: training re-creates its
workers every epoch -- and prints, per epoch, the worker's RSS at the end of the epoch, its peak
RSS so far, its open file descriptors, and the main process's RSS. Run from the repository root::

    python bench/memory.py [--videos 8] [--clips 48] [--epochs 3] [--tiny]

A leak shows as RSS and descriptors rising epoch after epoch; a flat line (after the first epoch's
allocator warm-up) is the expected result.
"""

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark's video generator
import data_throughput  # noqa: E402

MIB = 2**20


class WithWorkerMemory(torch.utils.data.Dataset):
    """A dataset's samples, each with the memory of the process that loaded it."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> dict:
        sample = self.dataset[idx]
        process = psutil.Process()
        return {"label": sample["label"], "pid": os.getpid(), "rss": process.memory_info().rss,
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
                "fds": process.num_fds()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--clips", type=int, default=48, help="clips per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="2 small 2-s videos (64x48), 4 clips per epoch")
    args = parser.parse_args(argv)
    if args.tiny:
        args.videos, args.clips = 2, 4
        data_throughput.WIDTH, data_throughput.HEIGHT, data_throughput.SECONDS = 64, 48, 2  # fast to write

    with tempfile.TemporaryDirectory() as tmp:
        paths = data_throughput.generate(Path(tmp), args.videos, seed=0)["mpeg4"]
        dataset = WithWorkerMemory(data_throughput.clip_dataset(paths, "fast"))
        sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=args.clips,
                                                 generator=torch.Generator().manual_seed(0))
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=1,
                                             persistent_workers=True)
        size = f"{data_throughput.WIDTH}x{data_throughput.HEIGHT}"
        print(f"{args.videos} videos {size} MPEG-4/AVI, decoder=fast, clip 32x2 at 224 px, {args.clips} clips per "
              f"epoch, one persistent worker; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'epoch':>5} {'worker RSS (MiB)':>17} {'worker peak RSS (MiB)':>22} {'worker open fds':>16} "
              f"{'main RSS (MiB)':>15}")
        rows = []
        for epoch in range(1, args.epochs + 1):
            *_, sample = loader  # the epoch's clips; the last one reports the worker's state at its end
            rows.append(sample)
            print(f"{epoch:>5} {sample['rss'] / MIB:>17.1f} {sample['peak_rss'] / MIB:>22.1f} {sample['fds']:>16} "
                  f"{psutil.Process().memory_info().rss / MIB:>15.1f}", flush=True)
        if len({row["pid"] for row in rows}) != 1:
            raise RuntimeError("the worker was restarted between epochs: growth cannot be measured")
        growth = (rows[-1]["rss"] - rows[min(1, len(rows) - 1)]["rss"]) / MIB
        print(f"worker RSS change from epoch {min(2, len(rows))} to epoch {len(rows)}: {growth:+.1f} MiB")


if __name__ == "__main__":
    main()
