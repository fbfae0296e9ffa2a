"""Per-video metadata, probed in parallel once and cached on disk as a ``datasets.Dataset``.

    table = probe_index(index)            # columns: path, label, num_frames, fps, duration,
                                          #          width, height, has_audio, error
    bad = probe_errors(table)             # {row: error} of the unusable videos
    python -m accel_slowfast.data check recipes/ucf101/slowfast_r50_4x16x1_256e.yaml

The cache key is every file's path, label, size and modification time, so a changed or replaced
video is probed again; the second load of a 13k-video index reads one Arrow file. Probing shows
a progress bar with its ETA (Kinetics' 650k videos take minutes).

A cache is written into a temporary sibling folder and renamed into place when complete, so a
reader never sees a half-written one, and processes that probe the same index at once (one per
node, when nodes share the cache folder) cannot mix their files: the first rename wins and the
others discard their copy.
"""

import hashlib
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import datasets
import numpy as np
import pyarrow.compute as pc
from tqdm.auto import tqdm

from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.streams import frame_count
from accel_slowfast.data.synthetic import default_cache_dir

logger = logging.getLogger(__name__)

# 2: caches are written atomically (a version-1 folder may be half-written, never read it);
# 3: num_frames is the decoders' count (Matroska/WebM ones changed).
PROBE_VERSION = 3
COLUMNS = ("path", "label", "num_frames", "fps", "duration", "width", "height", "has_audio", "error")
COMPLETE = "dataset_info.json"  # save_to_disk's last file; a cache folder only exists once it is complete
CHUNK = 64  # videos per thread task: a Future per video cost more main-thread time than probing a small one


def probe_video(path: str | Path) -> dict:
    """Metadata of one video; ``error`` says why it cannot be used ("" when fine).

    ``num_frames`` is ``streams.frame_count``'s, the count the decoders sample clips from (the
    header's, else from the stream duration, else by demuxing), so the data check's "too short"
    and a clip sampler agree on every container; the rest is read from the header.
    """
    row = {"num_frames": 0, "fps": 0.0, "duration": 0.0, "width": 0, "height": 0, "has_audio": False, "error": ""}
    try:
        if Path(path).stat().st_size == 0:
            raise ValueError("empty file (0 bytes)")
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = container.duration / 1e6 if container.duration else 0.0
            row.update(
                num_frames=frame_count(container, stream), fps=fps, duration=duration,
                width=stream.codec_context.width, height=stream.codec_context.height,
                has_audio=bool(container.streams.audio),
            )
            if row["num_frames"] <= 0:
                raise ValueError("no frames")
    except Exception as error:  # noqa: BLE001 - any failure makes the video unusable; say why
        row["error"] = f"{type(error).__name__}: {error}".strip()
    return row


def _probe_videos(paths: list[str]) -> list[dict]:
    return [probe_video(path) for path in paths]


def _cache_key(index: VideoIndex) -> str:
    """A digest of every path, label, size and modification time (-1 for a file that is gone)."""
    stats = np.full((len(index), 2), -1, np.int64)  # (N, [size, mtime_ns])
    for i, path in enumerate(index.paths):
        try:
            stat = os.stat(path)
            stats[i] = stat.st_size, stat.st_mtime_ns
        except OSError:
            pass
    digest = hashlib.sha1(f"probe-v{PROBE_VERSION}".encode())
    for array in (index.paths.offsets, index.paths.buffer, index.labels.astype(np.int64), stats):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def probe_index(index: VideoIndex, cache_dir: str | Path | None = None, num_threads: int = 8) -> datasets.Dataset:
    """A table with one row per video of ``index`` and its probed metadata (cached)."""
    cache = Path(cache_dir or default_cache_dir()) / "index" / _cache_key(index)
    if (cache / COMPLETE).exists():
        return datasets.load_from_disk(str(cache))
    columns = {key: [] for key in COLUMNS[2:]}
    desc = f"probing {Path(index.source).name or 'videos'}"
    chunks = [index.paths[start:start + CHUNK] for start in range(0, len(index), CHUNK)]
    with (ThreadPoolExecutor(num_threads) as pool,  # PyAV releases the GIL while it reads
          tqdm(total=len(index), desc=desc, unit="video", mininterval=1) as bar):
        for rows in pool.map(_probe_videos, chunks):
            for key, values in columns.items():
                values.extend(row[key] for row in rows)
            bar.update(len(rows))
    table = datasets.Dataset.from_dict({"path": list(index.paths), "label": index.labels, **columns})
    _save(table, cache)
    return table


def _save(table: datasets.Dataset, cache: Path) -> None:
    """Write ``table`` to ``cache`` atomically: into a temporary sibling, then one rename."""
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    staging = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f"{cache.name}.tmp-", dir=cache.parent)
        table.save_to_disk(staging)
        os.rename(staging, cache)
    except OSError as error:
        if not (cache / COMPLETE).exists():  # else another process renamed its copy first: keep that one
            logger.warning("could not cache the video index in %s: %s", cache, error)  # the next run re-probes
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if bars:
            datasets.enable_progress_bars()


def probe_errors(table: datasets.Dataset) -> dict[int, str]:
    """``{row: error}`` of the videos that cannot be used, read without building a string per video."""
    errors = table.data.column("error")
    rows = np.flatnonzero(pc.utf8_length(errors).to_numpy(zero_copy_only=False))
    return dict(zip(rows.tolist(), errors.take(rows).to_pylist(), strict=True))
