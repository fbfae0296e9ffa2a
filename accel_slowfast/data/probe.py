"""Per-video metadata, probed in parallel once and cached on disk as a ``datasets.Dataset``.

    table = probe_index(index)            # columns: path, label, num_frames, fps, duration,
                                          #          width, height, has_audio, error
    python -m accel_slowfast.data check recipes/ucf101/slowfast_r50_4x16x1_256e.yaml

The cache key is every file's path, size and modification time, so a changed or replaced
video is probed again; the second load of a 13k-video index reads one Arrow file.
"""

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import datasets

from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.synthetic import default_cache_dir

logger = logging.getLogger(__name__)

PROBE_VERSION = 1
COLUMNS = ("path", "label", "num_frames", "fps", "duration", "width", "height", "has_audio", "error")


def probe_video(path: str | Path) -> dict:
    """Header metadata of one video; ``error`` says why it cannot be used ("" when fine)."""
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
                num_frames=int(stream.frames or round(duration * fps)), fps=fps, duration=duration,
                width=stream.codec_context.width, height=stream.codec_context.height,
                has_audio=bool(container.streams.audio),
            )
            if row["num_frames"] <= 0:
                raise ValueError("no frames")
    except Exception as error:  # noqa: BLE001 - any failure makes the video unusable; say why
        row["error"] = f"{type(error).__name__}: {error}".strip()
    return row


def _cache_key(index: VideoIndex) -> str:
    digest = hashlib.sha1(f"probe-v{PROBE_VERSION}".encode())
    for record in index.records:
        try:
            stat = record.path.stat()
            digest.update(f"{record.path}|{record.label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{record.path}|{record.label}|gone\n".encode())
    return digest.hexdigest()


def probe_index(index: VideoIndex, cache_dir: str | Path | None = None, num_threads: int = 8) -> datasets.Dataset:
    """A table with one row per record of ``index`` and its probed metadata (cached)."""
    cache = Path(cache_dir or default_cache_dir()) / "index" / _cache_key(index)
    if (cache / "dataset_info.json").exists():
        return datasets.load_from_disk(str(cache))
    with ThreadPoolExecutor(num_threads) as pool:  # PyAV releases the GIL while it reads
        rows = list(pool.map(probe_video, [r.path for r in index.records]))
    table = datasets.Dataset.from_dict({
        "path": [str(r.path) for r in index.records],
        "label": [r.label for r in index.records],
        **{key: [row[key] for row in rows] for key in COLUMNS[2:]},
    })
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        table.save_to_disk(str(cache))
    except OSError as error:  # a read-only cache only costs the next run a re-probe
        logger.warning("could not cache the video index in %s: %s", cache, error)
    finally:
        if bars:
            datasets.enable_progress_bars()
    return table
