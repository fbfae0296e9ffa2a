"""Per-video metadata, probed in parallel once and cached on disk as a ``datasets.Dataset``.

    table = probe_index(index)            # columns: path, label, num_frames, fps, duration,
                                          #          width, height, has_audio, error
    bad = probe_errors(table)             # {row: error} of the unusable videos
    large = over_budget(table, clip_len=32, max_decode_pixels=150_000_000)   # {row: reason}: never decoded
    accel-slowfast data check recipes/ucf101/slowfast_r50_4x16x1_256e.yaml

The cache key is every file's path, label, size and modification time, so a changed or replaced
video is probed again; the second load of a 13k-video index reads one Arrow file. Probing shows
a progress bar with its ETA (plain lines without a terminal) (Kinetics' 650k videos take minutes).

The decode budget (``max_decode_pixels``) bounds the memory one video costs. A clip of
``clip_len`` frames at the header's size is ``clip_len x height x width`` pixels; a video over
the budget is bad (refused, not resized): training, ``test`` and ``data check`` list it in
``bad_videos.txt`` with the reason from the probe, before any decode, and ``predict`` refuses it
in one line. Why not resize it while decoding (the scaler) instead: the FFmpeg decoder holds its
own frames at full size whatever we convert them to. Measured on an 8000x8000 20-frame H.264 file
(one thread, nothing kept): 450 MB resident for the decode alone, 1 GB with frame threads; in
training a bad video's place costs nothing, as its clip comes from another video. Memory then
stays bounded: a decode holds at most ``max_decode_pixels x 3`` bytes a clip (the multi-view test
and ``predict`` hold ``num_clips`` clips of a video at once) plus the decoder's few frames of a
size the budget also bounds. The probe itself decodes no frame (``streams.probe_video``), so with
the 8000x8000 file among a tiny training set's videos the run peaked where it did without it
(1.01 GB both), and ``predict`` refused it at 0.95 GB (before the budget: 3.7 and 19.7 GB).

A cache that cannot be read is moved aside with a warning and the index probed again (``_load``).
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
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import datasets
import numpy as np
import pyarrow.compute as pc

from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.synthetic import default_cache_dir
from accel_slowfast.progress import Progress

logger = logging.getLogger(__name__)

# 2: caches are written atomically (a version-1 folder may be half-written, never read it);
# 3: num_frames is the decoders' count (Matroska/WebM ones changed);
# 4: num_frames is the frames a sequential decode outputs (a wrong header count no longer counts).
PROBE_VERSION = 4
COLUMNS = ("path", "label", "num_frames", "fps", "duration", "width", "height", "has_audio", "error")
COMPLETE = "dataset_info.json"  # save_to_disk's last file; a cache folder only exists once it is complete
CHUNK = 64  # videos per thread task: a Future per video cost more main-thread time than probing a small one


def _probe_rows(index: VideoIndex, rows: range) -> list[dict]:
    return [index.probe(row) for row in rows]


def _cache_key(index: VideoIndex) -> str:
    """The index's fingerprint (its videos as they are now, ``VideoIndex.fingerprint``) and this version."""
    return hashlib.sha1(f"probe-v{PROBE_VERSION}-{index.fingerprint()}".encode()).hexdigest()


def probe_index(index: VideoIndex, cache_dir: str | Path | None = None, num_threads: int = 8) -> datasets.Dataset:
    """A table with one row per video of ``index`` and its probed metadata (cached)."""
    cache = Path(cache_dir or default_cache_dir()) / "index" / _cache_key(index)
    table = _load(cache, len(index))
    if table is not None:
        return table
    columns = {key: [] for key in COLUMNS[2:]}
    desc = f"probing {Path(index.source).name or 'videos'}"
    bar = Progress(len(index), desc, unit="video")
    chunks = [range(start, min(start + CHUNK, len(index))) for start in range(0, len(index), CHUNK)]
    with ThreadPoolExecutor(num_threads) as pool:  # PyAV releases the GIL while it reads
        for rows in pool.map(partial(_probe_rows, index), chunks):
            for key, values in columns.items():
                values.extend(row[key] for row in rows)
            bar.update(len(rows))
    bar.close()
    table = datasets.Dataset.from_dict({"path": list(index.paths), "label": index.labels, **columns})
    _save(table, cache)
    return table


def _load(cache: Path, rows: int) -> datasets.Dataset | None:
    """The table cached in ``cache``, or None when there is none or it cannot be read.

    A cache that cannot be read (a truncated Arrow file, an edited ``state.json``, a folder without
    its last file: a disk that filled up, a copy that was cut short) would fail every run until found
    and deleted by hand; instead it is moved aside, named in one warning, and the index is probed again.
    """
    if not cache.exists():
        return None
    try:
        if not (cache / COMPLETE).exists():  # _save renames only complete folders: this one was damaged since
            raise FileNotFoundError(f"{COMPLETE} is missing")
        table = datasets.load_from_disk(str(cache))
        if table.column_names != list(COLUMNS) or len(table) != rows:
            raise ValueError(f"it holds {len(table)} rows of {table.column_names}, expected {rows} of {list(COLUMNS)}")
        return table
    except Exception as error:  # noqa: BLE001 - whatever is wrong with it, probing again mends it
        aside = cache.with_name(f"{cache.name}.damaged-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(cache, aside)
        except OSError:  # another process moved it first (or it is not ours to move): probe without it
            aside = cache
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        logger.warning("the probed-index cache %s cannot be read (%s: %s); moved it to %s and probing the videos "
                       "again", cache, type(error).__name__, reason, aside)
        return None


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


def decode_budget_error(clip_len: int, height: int, width: int, max_decode_pixels: int) -> str:
    """Why a ``width`` x ``height`` video is refused for clips of ``clip_len`` frames, or "" when it fits."""
    pixels = clip_len * height * width
    if pixels <= max_decode_pixels:
        return ""
    return (f"over the decode budget: a clip of {clip_len} frames of {width}x{height} is {pixels:,} pixels, more than "
            f"max_decode_pixels {max_decode_pixels:,}; downscale the video or raise max_decode_pixels")


def over_budget(table: datasets.Dataset, clip_len: int, max_decode_pixels: int) -> dict[int, str]:
    """``{row: reason}`` of the probed videos whose clips exceed the decode budget (``decode_budget_error``)."""
    height, width = (table.data.column(name).to_numpy().astype(np.int64) for name in ("height", "width"))
    rows = np.flatnonzero(clip_len * height * width > max_decode_pixels)
    return {row: decode_budget_error(clip_len, int(height[row]), int(width[row]), max_decode_pixels)
            for row in rows.tolist()}
