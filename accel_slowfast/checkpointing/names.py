"""The work_dir's file names, in one place: every file and folder a run writes, and how checkpoints
are named.

    recipe.yaml, classes.json                        the run's resolved recipe, class names by label
    metrics.jsonl (metrics_<time>.jsonl)             one record per log line (a fresh run's predecessor)
    train_<time>.log, test_<time>.log                the text logs
    bad_videos.txt                                   every unusable video, once, with its reason
    checkpoints/epoch_<N>/, checkpoints/iter_<N>/    Accelerate's save_state + recipe.yaml + meta.json +
                                                     custom_checkpoint_<i>.pkl (the runner's position, EMA)
    checkpoints/best_<metric>_epoch_<N>.pth          the best weights so far
    checkpoints/.tmp_<run id>_<name>                 a save in progress (renamed when complete)
    checkpoints_<time>/                              an earlier run's checkpoints, moved aside (--overwrite)
    run.lock                                         held by the running run: its pid and host (lock.py)
    wandb/, wandb_run_id.txt, tensorboard/           the trackers' files
    profiler/, val_confusion.png                     profiler traces, the latest evaluation's confusion
    test_metrics.json, test_predictions.csv,         what the multi-view test of a checkpoint writes
    test_per_class.csv, test_confusion.png

What a checkpoint folder's ``meta.json`` holds and how it is checked: ``manifest.py``.
"""

import time
from pathlib import Path

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
