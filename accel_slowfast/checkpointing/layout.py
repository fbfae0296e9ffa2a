"""The work_dir's layout, in one place: every file and folder name a run writes, the checkpoints'
names, manifest and discovery, and the runner's resumable position.

    recipe.yaml, classes.json                        the run's resolved recipe, class names by label
    metrics.jsonl (metrics_<time>.jsonl)             one record per log line (a fresh run's predecessor)
    train_<time>.log, test_<time>.log                the text logs
    bad_videos.txt                                   every unusable video, once, with its reason
    checkpoints/epoch_<N>/, checkpoints/iter_<N>/    Accelerate's save_state + recipe.yaml + meta.json +
                                                     custom_checkpoint_<i>.pkl (the runner's position, EMA)
    checkpoints/best_<metric>_epoch_<N>.pth          the best weights so far
    checkpoints/.tmp_<run id>_<name>                 a save in progress (renamed when complete)
    checkpoints_<time>/                              an earlier run's checkpoints, moved aside (--overwrite)
    run.lock                                         held by the running run: its pid and host (workdir_lock.py)
    wandb/, wandb_run_id.txt, tensorboard/           the trackers' files
    profiler/, val_confusion.png                     profiler traces, the latest evaluation's confusion
    test_metrics.json, test_predictions.csv,         what the multi-view test of a checkpoint writes
    test_per_class.csv, test_confusion.png

``meta.json`` is written last, inside the staging folder, which is then renamed: a folder with
a ``meta.json`` was complete when written. It holds the runner's position (``epoch``,
``inner_iter``, ``iter``, ``meta``, ``log_history``), the number of processes, and the size and
SHA-256 of every other file, so damage found later (a truncated copy, a disk error) is caught
before anything is loaded:

    from accel_slowfast.checkpointing.layout import verify_checkpoint
    verify_checkpoint("work_dirs/x/checkpoints/epoch_4")    # CheckpointError naming a damaged file
"""

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from accel_slowfast.errors import CheckpointError

RECIPE_FILE = "recipe.yaml"
CLASSES_FILE = "classes.json"
METRICS_FILE = "metrics.jsonl"
BAD_VIDEOS_FILE = "bad_videos.txt"
CHECKPOINT_DIR = "checkpoints"
EPOCH_PREFIX = "epoch_"
ITER_PREFIX = "iter_"
STAGING_PREFIX = ".tmp_"
META_FILE = "meta.json"
OBJECT_STATE = "custom_checkpoint_{}.pkl"  # Accelerate's name for a registered object's state, kept for old checkpoints
RUN_ID_FILE = "wandb_run_id.txt"
TENSORBOARD_DIR = "tensorboard"
PROFILER_DIR = "profiler"
VAL_CONFUSION_FILE = "val_confusion.png"
TEST_METRICS_FILE = "test_metrics.json"
TEST_PREDICTIONS_FILE = "test_predictions.csv"
TEST_PER_CLASS_FILE = "test_per_class.csv"
TEST_CONFUSION_FILE = "test_confusion.png"

logger = logging.getLogger("accel_slowfast")


def checkpoint_name(*, epoch: int = 0, iteration: int = 0) -> str:
    """``epoch_<N>`` (an epoch's end) or ``iter_<N>`` (after global iteration N)."""
    return f"{EPOCH_PREFIX}{epoch}" if epoch else f"{ITER_PREFIX}{iteration}"


def best_checkpoint_name(metric: str, epoch: int) -> str:
    return f"best_{metric}_epoch_{epoch}.pth"


def log_file_name(command: str) -> str:
    """``train_<time>.log``, ``test_<time>.log``: one text log per command run."""
    return f"{command}_{time.strftime('%Y%m%d_%H%M%S')}.log"


def staging_path(final: Path, run_id: str) -> Path:
    """Where ``final`` is written before it is renamed into place: ``.tmp_<run id>_<name>`` beside it."""
    return final.with_name(f"{STAGING_PREFIX}{run_id}_{final.name}")


def set_aside(path: Path) -> Path:
    """Rename a previous run's ``metrics.jsonl`` (or ``checkpoints`` folder) to ``metrics_<its time>[_n].jsonl``
    (``checkpoints_<its time>[_n]``); return the new path."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(path.stat().st_mtime))
    aside, n = path.with_name(f"{path.stem}_{stamp}{path.suffix}"), 1
    while aside.exists():
        aside, n = path.with_name(f"{path.stem}_{stamp}_{n}{path.suffix}"), n + 1
    path.rename(aside)
    return aside


class RunnerProgress:
    """The runner's position as a checkpointable object for Accelerate: ``epoch`` (the epoch to
    run next, or the one in progress), ``inner_iter`` (its iterations done), ``iter`` (global
    iterations done), ``meta`` (best score...) and the log buffer's values not yet logged.
    ``meta.json`` holds the same, readable without loading the checkpoint."""

    def __init__(self):
        self.state: dict[str, Any] = {"epoch": 0, "inner_iter": 0, "iter": 0, "meta": {}, "log_history": {}}

    def record(self, runner, epoch: int, inner_iter: int, iter: int) -> None:
        history = {key: [(float(value), count) for value, count in entries]
                   for key, entries in runner.log_buffer.history.items()} if inner_iter else {}
        self.state = {"epoch": epoch, "inner_iter": inner_iter, "iter": iter, "meta": dict(runner.meta),
                      "log_history": history}

    def restore(self, runner) -> None:
        runner.epoch, runner.iter = self.state["epoch"], self.state["iter"]
        runner.start_inner_iter = self.state.get("inner_iter", 0)
        runner.meta.update(self.state["meta"])
        for key, entries in self.state.get("log_history", {}).items():
            runner.log_buffer.history[key] = [tuple(entry) for entry in entries]

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` and the size and SHA-256 of every file of ``folder`` to its ``meta.json``."""
    files = {path.name: {"bytes": path.stat().st_size, "sha256": sha256(path)}
             for path in sorted(folder.iterdir()) if path.is_file() and path.name != META_FILE}
    partial = folder / f"{META_FILE}.partial"
    partial.write_text(json.dumps({**meta, "files": files}, indent=2))
    os.replace(partial, folder / META_FILE)


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint folder; ``CheckpointError`` if it is absent or unreadable."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint {folder} is incomplete: it has no {META_FILE} (its save did not finish)")
    try:
        meta = json.loads(path.read_text())
        int(meta["iter"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {folder} is damaged: {path} does not read ({error})") from None
    return meta


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check every file ``meta.json`` lists against its recorded size and SHA-256; return the meta.

    Raises ``CheckpointError`` naming the first file that is missing, truncated or changed.
    Folders written before manifests existed (no ``files`` entry) are accepted unverified.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder} does not exist" if not folder.exists() else
                              f"checkpoint {folder} is a file, not a checkpoint folder (checkpoints/epoch_N or "
                              "iter_N); to start from a weights file use --load_from")
    meta = read_meta(folder)
    for name, record in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is damaged: {path} is missing")
        size = path.stat().st_size
        if size != record["bytes"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: {path} has {size} bytes, {record['bytes']} were "
                                  "written (truncated or overwritten)")
        if sha256(path) != record["sha256"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: the content of {path} differs from what was "
                                  "written (its SHA-256 changed)")
    return meta


def sorted_checkpoints(root: Path, run_id: str | None = None) -> list[Path]:
    """Epoch and iteration checkpoint folders under ``root`` with a ``meta.json`` (with ``run_id``:
    only those that run wrote), oldest (fewest iterations) first; at equal iterations an epoch
    checkpoint counts as newer. Folders whose ``meta.json`` does not read sort first (they are the
    least trustworthy) and belong to no run."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith((EPOCH_PREFIX, ITER_PREFIX)) and (path / META_FILE).exists():
            try:
                meta = json.loads((path / META_FILE).read_text())
                position, owner = int(meta["iter"]), meta.get("run_id")
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                position, owner = -1, None
            if run_id is None or owner == run_id:
                found.append((position, path.name.startswith(EPOCH_PREFIX), path.name, path))
    return [path for *_, path in sorted(found)]


def find_resume_checkpoint(work_dir: str | Path) -> Path | None:
    """The newest intact checkpoint of ``work_dir`` (for ``resume_from: auto``), or None.

    Newer checkpoints that are damaged or incomplete are skipped with a warning naming them.
    """
    root = Path(work_dir) / CHECKPOINT_DIR
    complete = sorted_checkpoints(root)
    named = [p for p in root.iterdir() if p.is_dir() and p.name.startswith((EPOCH_PREFIX, ITER_PREFIX))] \
        if root.is_dir() else []
    for path in sorted(set(named) - set(complete)):
        logger.warning("resume_from=auto: skipping %s: it has no %s (its save did not finish)", path, META_FILE)
    for path in reversed(complete):
        try:
            verify_checkpoint(path)
        except CheckpointError as error:
            logger.warning("resume_from=auto: skipping %s", error)
            continue
        return path
    return None


def remove_staging(work_dir: str | Path) -> list[Path]:
    """Delete the ``.tmp_*`` folders and files interrupted saves left in ``work_dir/checkpoints``; return them."""
    root = Path(work_dir) / CHECKPOINT_DIR
    stale = sorted(root.glob(f"{STAGING_PREFIX}*")) if root.is_dir() else []
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


def reports_dir(checkpoint: str | Path) -> Path:
    """Where the test of ``checkpoint`` writes: beside it, and for a run's ``checkpoints/<name>`` the
    run's work_dir (the folder holding ``checkpoints/``), never the work_dir its recipe names (a
    copied checkpoint's recipe names the run it was copied from)."""
    folder = Path(checkpoint).absolute().parent
    return folder.parent if folder.name == CHECKPOINT_DIR else folder


def find_run_file(checkpoint: str | Path, name: str) -> Path:
    """The nearest ``name`` (``recipe.yaml``, ``classes.json``) at or above a checkpoint: the
    checkpoint folder's own copy first (it holds the recipe it was trained with), then the run's."""
    for folder in [Path(checkpoint), *Path(checkpoint).parents]:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {name} at or above {checkpoint}; is it inside a training work_dir?")
