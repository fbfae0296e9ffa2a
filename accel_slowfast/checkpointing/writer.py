"""The one way a checkpoint reaches the disk, for the interval, stop-signal and best checkpoints:
written under a staging name, agreed on by every process, renamed into place once complete.

    writer = CheckpointWriter(recipe.to_dict(), recipe.max_keep_ckpts, objects=[ema_hook], run_id=run_id)
    writer.save(runner, "epoch_3", epoch=3, inner_iter=0, iter=120)     # every process calls it
    save_best(runner, path, {"state_dict": ..., "meta": ...}, run_id, replaces=old_best)

A write that fails on any process removes the partial save and raises one ``CheckpointWriteError``
on every process (``faults.write_failure``: a full disk says how much room it needs and which
checkpoint is the last good one); earlier checkpoints stay intact, and a half-written checkpoint
is never picked up. PyTorch's worker-death signal is held back while writing
(``interrupts.deferred``), so no checkpoint is cut in half by it. Saves an interrupted run left
behind are removed at the next start (``remove_staging``).
"""

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from accel_slowfast.checkpointing.faults import any_process, state_bytes, write_failure
from accel_slowfast.checkpointing.manifest import sorted_checkpoints, write_manifest
from accel_slowfast.checkpointing.names import CHECKPOINT_DIR, OBJECT_STATE, RECIPE_FILE, STAGING_PREFIX, staging_path
from accel_slowfast.interrupts import deferred


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_atomically(runner, final: Path, run_id: str, main_part: Callable[[Path], None],
                     every_part: Callable[[Path], None] | None = None, with_optimizer: bool = True) -> None:
    """Write ``final`` (a folder or a file) under its staging name, then rename it into place.

    Every process calls this. ``every_part(staging)``, if given, runs on every process (Accelerate's
    ``save_state`` writes each process's files), then ``main_part(staging)`` on the main process.
    ``with_optimizer``: whether the checkpoint holds the optimizer state, for the room a failure
    says it needs.
    """
    accelerator = runner.accelerator
    staging = staging_path(final, run_id)
    error = None
    with deferred(signal.SIGCHLD):
        if every_part is not None:
            if accelerator.is_main_process:
                _remove(staging)  # what an earlier, interrupted save of this name left
            accelerator.wait_for_everyone()
            try:
                every_part(staging)
            except Exception as failure:  # noqa: BLE001 - any failure: agree on it, then report it
                error = failure
            accelerator.wait_for_everyone()  # every process's files are written (or failed)
        if accelerator.is_main_process and error is None:
            try:
                main_part(staging)
                if final.is_dir():
                    shutil.rmtree(final, ignore_errors=True)
                os.replace(staging, final)
            except Exception as failure:  # noqa: BLE001
                error = failure
        if any_process(accelerator, error is not None):  # every process raises the same error
            if accelerator.is_main_process:
                _remove(staging)
            raise write_failure(error, final, runner.work_dir, state_bytes(runner, with_optimizer)) from error


class CheckpointWriter:
    """Writes the run's resumable state as ``checkpoints/<name>``; remembers the newest one.

    ``accelerator.save_state`` writes model, optimizer, grad scaler, every process's RNG states
    and the sampler into the staging folder; the main process adds ``custom_checkpoint_<i>.pkl``:
    the runner's state (``Runner.state_dict``, index 0) and each of ``objects`` after it (tensors
    and plain values, which a resume reads with ``weights_only=True``, ``resume.load_checkpoint``),
    the run's recipe and the manifest (``manifest.write_manifest``). ``max_keep_ckpts`` newest
    checkpoints of this run are kept (0 keeps all; another run's are never deleted); the best
    weights are a separate file (``save_best``).

    Args:
        recipe: the resolved recipe, saved in every checkpoint (a resume compares it with its own).
        max_keep_ckpts: checkpoints kept, newest first; 0 keeps all.
        objects: other objects with a ``state_dict`` to save (the ``EMAHook``), after the runner's.
        run_id: the run's id (``lock.py``), in every ``meta.json`` and staging name.
    """

    def __init__(self, recipe: dict[str, Any], max_keep_ckpts: int, objects: tuple = (), run_id: str = ""):
        self.recipe, self.max_keep_ckpts, self.objects, self.run_id = recipe, max_keep_ckpts, list(objects), run_id
        self.last_saved: tuple[int, Path] | None = None  # (global iteration, folder) of the newest save

    def save(self, runner, name: str, **position: int) -> None:
        """Write ``checkpoints/<name>`` holding the runner at ``position`` (``epoch``, ``inner_iter``,
        ``iter``: where a resume starts); every process calls this."""
        accelerator = runner.accelerator
        root = runner.work_dir / CHECKPOINT_DIR
        final = root / name
        state = runner.state_dict(**position)

        def add_run_files(staging: Path) -> None:
            for index, content in enumerate([state, *(obj.state_dict() for obj in self.objects)]):
                torch.save(content, staging / OBJECT_STATE.format(index))
            (staging / RECIPE_FILE).write_text(yaml.safe_dump(self.recipe, sort_keys=False))
            write_manifest(staging, {**state, "run_id": self.run_id, "num_processes": accelerator.num_processes})

        write_atomically(runner, final, self.run_id, add_run_files,
                         every_part=lambda staging: accelerator.save_state(str(staging)))
        self.last_saved = (position["iter"], final)
        if accelerator.is_main_process:
            runner.logger.info("Saved checkpoint %s", final)
            if self.max_keep_ckpts > 0:
                for old in sorted_checkpoints(root, self.run_id)[: -self.max_keep_ckpts]:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()


def save_best(runner, final: Path, content: dict[str, Any], run_id: str, replaces: str | None = None) -> None:
    """Write the best weights ``content`` (gathered on every process beforehand:
    ``accelerator.get_state_dict``) as the file ``final``, then remove the best file it
    ``replaces``. Every process calls this; only the main process writes."""

    def write(staging: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        torch.save(content, staging)

    write_atomically(runner, final, run_id, write, with_optimizer=False)
    if runner.accelerator.is_main_process and replaces and Path(replaces) != final and Path(replaces).exists():
        Path(replaces).unlink()


def remove_staging(work_dir: str | Path) -> list[Path]:
    """Delete the ``.tmp_*`` folders and files interrupted saves left in ``work_dir/checkpoints``; return them."""
    root = Path(work_dir) / CHECKPOINT_DIR
    stale = sorted(root.glob(f"{STAGING_PREFIX}*")) if root.is_dir() else []
    for path in stale:
        _remove(path)
    return stale
