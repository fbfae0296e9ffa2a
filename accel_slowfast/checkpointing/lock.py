"""One run per work_dir: the lock a training run holds, and a fresh run kept out of another run's checkpoints.

    with hold_work_dir(recipe, accelerator) as run_id:    # training.train does this first
        ...                                                # checkpoints carry run_id in their meta.json

- The main process holds ``<work_dir>/run.lock`` for the whole run (``filelock``'s marker lock: the
  file records the holder's pid, host and process start time) and releases it on any exit, an
  error or a stop signal included. A second run into the same work_dir stops in one line naming
  the running one's host and pid, before it touches anything.
- A lock whose holder is gone (a crash, SIGKILL, a lost node) is taken over when its process is
  found dead on this host; a holder on another host cannot be probed, so the message says to
  delete ``run.lock`` once that run is known to be gone.
- A fresh run (no ``resume_from``) into a work_dir that holds another run's checkpoints refuses:
  resume it, pick another work_dir, or ``--overwrite`` to move them aside (``checkpoints_<time>``).
- Each run has an id, kept across resumes (``meta.json``'s ``run_id``): ``max_keep_ckpts`` removes
  only the checkpoints of the run that wrote them, and staging names carry it.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accelerate.utils import broadcast_object_list
from filelock import MarkerSoftFileLock, Timeout

from accel_slowfast.checkpointing.faults import check_work_dir
from accel_slowfast.checkpointing.names import CHECKPOINT_DIR, EPOCH_PREFIX, ITER_PREFIX, set_aside
from accel_slowfast.errors import RecipeError, UserError

LOCK_FILE = "run.lock"
logger = logging.getLogger("accel_slowfast")


class WorkDirBusy(UserError):
    """Another run holds the work_dir's lock."""


def new_run_id() -> str:
    """``<time>-<6 hex digits>``: sorts by start time, unique among runs started the same second."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def acquire(work_dir: Path) -> MarkerSoftFileLock:
    """Take ``work_dir``'s lock now or raise ``WorkDirBusy`` naming its holder."""
    lock = MarkerSoftFileLock(str(work_dir / LOCK_FILE), timeout=0, is_singleton=False)
    before = lock.owner
    try:
        lock.acquire()
    except Timeout:
        owner = lock.owner
        holder = f"pid {owner.pid} on host {owner.hostname}" if owner else "another run"
        raise WorkDirBusy(f"work_dir {work_dir} is in use by the run of {holder} ({work_dir / LOCK_FILE}); wait for "
                          "it to end or choose another --work_dir (if that run is gone, e.g. its machine crashed, "
                          f"delete {LOCK_FILE})") from None
    if before is not None:
        logger.warning("work_dir %s: took over the lock of pid %d on host %s, which ended without releasing it",
                       work_dir, before.pid, before.hostname)
    return lock


def checkpoints_present(work_dir: Path) -> list[str]:
    """The names of the checkpoints (resumable folders and best weights) in ``work_dir/checkpoints``."""
    root = work_dir / CHECKPOINT_DIR
    return sorted(p.name for p in root.iterdir() if p.name.startswith((EPOCH_PREFIX, ITER_PREFIX, "best_"))) \
        if root.is_dir() else []


def claim_for_fresh_run(work_dir: Path, overwrite: bool) -> None:
    """Refuse a fresh run into a work_dir holding another run's checkpoints, or move them aside (``overwrite``)."""
    found = checkpoints_present(work_dir)
    if not found:
        return
    if not overwrite:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise RecipeError(f"work_dir {work_dir} holds the checkpoints of an earlier run ({shown}); resume it with "
                          "--resume_from=auto, choose another --work_dir, or pass --overwrite to move them aside")
    aside = set_aside(work_dir / CHECKPOINT_DIR)
    logger.warning("overwrite: moved the earlier run's checkpoints to %s", aside)


@contextmanager
def hold_work_dir(recipe, accelerator) -> Iterator[str]:
    """Hold ``recipe.work_dir`` for this run (the main process takes the lock; every process gets
    the outcome, so none waits for a run that stopped); yield a new run id, the same on every process.

    Raises:
        RecipeError: the work_dir cannot be written, or holds another run's checkpoints (fresh run).
        WorkDirBusy: another run holds it.
    """
    work_dir, lock = Path(recipe.work_dir), None
    outcome = [None, new_run_id()]  # (error, run id), decided by the main process
    if accelerator.is_main_process:
        try:
            check_work_dir(work_dir, checkpoint_bytes=0)
            lock = acquire(work_dir)
            if not recipe.resume_from:
                claim_for_fresh_run(work_dir, recipe.overwrite)
        except UserError as error:
            if lock is not None:
                lock.release()
            outcome[0] = error
    if accelerator.num_processes > 1:
        outcome[0] = outcome[0] and str(outcome[0])  # (an exception does not cross processes)
        broadcast_object_list(outcome)
    if outcome[0]:
        raise outcome[0] if isinstance(outcome[0], UserError) else RecipeError(outcome[0])
    try:
        yield outcome[1]
    finally:
        if lock is not None:
            lock.release()
