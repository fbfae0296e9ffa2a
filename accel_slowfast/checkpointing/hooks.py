"""Hooks that save the run: regular checkpoints, and the checkpoint of a stop signal.

==================== ============ ============================================================
hook                 priority     does
==================== ============ ============================================================
``CheckpointHook``   LOWEST       resumable state every ``checkpoint_interval`` epochs,
                                  every ``checkpoint_interval_iters`` iterations, at the end
``InterruptHook``    LOWEST       a stop signal (``interrupts.py``): checkpoint after the step
                                  or the evaluation batch, then stop
==================== ============ ============================================================

Both run last (mmcv's CheckpointHook: NORMAL), so a checkpoint already holds its epoch's
evaluation (best score) and log lines: a resumed run neither forgets the best score nor
re-logs an epoch. Both write through one ``CheckpointWriter``.
"""

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import torch
import yaml

from accel_slowfast.checkpointing.faults import any_process, state_bytes, write_failure
from accel_slowfast.checkpointing.layout import (
    CHECKPOINT_DIR,
    OBJECT_STATE,
    RECIPE_FILE,
    RunnerProgress,
    checkpoint_name,
    sorted_checkpoints,
    staging_path,
    write_manifest,
)
from accel_slowfast.interrupts import (
    InterruptedRun,
    Interrupts,
    agreed_stop,
    deferred,
    exit_code,
    rng_states,
    set_rng_states,
)


class CheckpointWriter:
    """Writes the run's resumable state as ``checkpoints/<name>``; remembers the newest one.

    ``accelerator.save_state`` writes model, optimizer, grad scaler, every process's RNG states
    and the sampler into a staging folder; the main process adds the state of ``progress`` and
    ``objects`` (``custom_checkpoint_<i>.pkl``: tensors and plain values, which a resume reads with
    ``weights_only=True``, ``resume.load_checkpoint``), the run's recipe and the manifest
    (``workdir.write_manifest``) and renames the folder once complete, so a half-written
    checkpoint is never picked up. ``max_keep_ckpts`` newest checkpoints of this run are kept (0
    keeps all; another run's are never deleted); the best weights are a separate file.

    Args:
        progress: the runner's position.
        recipe: the resolved recipe, saved in every checkpoint (a resume compares it with its own).
        max_keep_ckpts: checkpoints kept, newest first; 0 keeps all.
        objects: other objects with a ``state_dict`` to save (the ``EMAHook``), after ``progress``.
        run_id: the run's id (``workdir_lock``), in every ``meta.json`` and staging name.
    """

    def __init__(self, progress: RunnerProgress, recipe: dict[str, Any], max_keep_ckpts: int, objects: tuple = (),
                 run_id: str = ""):
        self.progress, self.recipe, self.max_keep_ckpts, self.run_id = progress, recipe, max_keep_ckpts, run_id
        self.objects = [progress, *objects]
        self.last_saved: tuple[int, Path] | None = None  # (global iteration, folder) of the newest save

    def save(self, runner, name: str, **position: int) -> None:
        """Write ``checkpoints/<name>`` holding the runner at ``position`` (every process calls this).

        A failed write (on any process) removes the partial folder and raises
        ``CheckpointWriteError`` on every process; a full disk says how much room the checkpoint
        needs and which checkpoint is the last good one. PyTorch's worker-death signal is held
        back while writing (``interrupts.deferred``), so no checkpoint is cut in half by it.
        """
        accelerator = runner.accelerator
        root = runner.work_dir / CHECKPOINT_DIR
        final = root / name
        staging = staging_path(final, self.run_id)
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        self.progress.record(runner, **position)
        error = None
        with deferred(signal.SIGCHLD):
            try:
                accelerator.save_state(str(staging))
            except Exception as failure:  # noqa: BLE001 - any failure: agree on it, then report it
                error = failure
            accelerator.wait_for_everyone()  # every process's files are written (or failed)
            if accelerator.is_main_process and error is None:
                try:
                    for index, obj in enumerate(self.objects):
                        torch.save(obj.state_dict(), staging / OBJECT_STATE.format(index))
                    (staging / RECIPE_FILE).write_text(yaml.safe_dump(self.recipe, sort_keys=False))
                    write_manifest(staging, {**self.progress.state_dict(), "run_id": self.run_id,
                                             "num_processes": accelerator.num_processes})
                    shutil.rmtree(final, ignore_errors=True)
                    os.replace(staging, final)
                except Exception as failure:  # noqa: BLE001
                    error = failure
            if any_process(accelerator, error is not None):
                if accelerator.is_main_process:
                    shutil.rmtree(staging, ignore_errors=True)
                raise write_failure(error, final, runner.work_dir, state_bytes(runner)) from error
        self.last_saved = (position["iter"], final)
        if accelerator.is_main_process:
            runner.logger.info("Saved checkpoint %s", final)
            if self.max_keep_ckpts > 0:
                for old in sorted_checkpoints(root, self.run_id)[: -self.max_keep_ckpts]:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()


class CheckpointHook:
    """Save the full training state every ``interval`` epochs, after the last epoch, and every
    ``interval_iters`` iterations (0: never), so a run can resume from any of those moments.

    Iteration checkpoints are taken after an optimizer step only, so no partly accumulated
    gradient is lost, and not at an epoch's last iteration (the epoch checkpoint follows).
    """

    priority = "LOWEST"

    def __init__(self, writer: CheckpointWriter, interval: int, interval_iters: int):
        self.writer, self.interval, self.interval_iters = writer, interval, interval_iters

    def after_train_iter(self, runner) -> None:
        done = runner.iter + 1
        end_of_epoch = runner.inner_iter + 1 == len(runner.data_loader)
        if (self.interval_iters and done % self.interval_iters == 0 and not end_of_epoch
                and runner.accelerator.sync_gradients):
            self.writer.save(runner, checkpoint_name(iteration=done), epoch=runner.epoch,
                             inner_iter=runner.inner_iter + 1, iter=done)

    def after_train_epoch(self, runner) -> None:
        if not runner.epoch_due(self.interval) and not runner.stop_training:
            return  # (an early-stopped run still gets its last epoch's checkpoint)
        epoch = runner.epoch + 1
        self.writer.save(runner, checkpoint_name(epoch=epoch), epoch=epoch, inner_iter=0, iter=runner.iter)


class InterruptHook:
    """On a stop signal, save an iteration checkpoint after the current step, then stop.

    Checked after every iteration that ends an accumulation window (a checkpoint in the middle
    of one would lose its gradients), after each evaluation batch (``EvalHook`` calls
    ``_between_eval_batches``) and after each epoch's end work (precise BN, evaluation, epoch
    checkpoint). A stop during an evaluation abandons it and saves the run as the epoch's training
    left it, random generators included (precise BN and the loaders draw from them), so the
    resumed run evaluates that epoch again and goes on as if never stopped.

    Args:
        interrupts: the ``Interrupts`` whose handlers are active during the run.
        writer: the ``CheckpointWriter`` the regular checkpoints use.
    """

    priority = "LOWEST"  # registered after CheckpointHook: a regular checkpoint of this iteration comes first

    def __init__(self, interrupts: Interrupts, writer: CheckpointWriter):
        self.interrupts, self.writer = interrupts, writer
        self._trained_rng: dict[str, Any] | None = None  # the generators when this epoch's training ended

    def before_train_epoch(self, runner) -> None:
        # a run resumed at an epoch's end starts with that epoch's end work
        at_end = runner.start_inner_iter == len(runner.data_loader)
        self._trained_rng = rng_states() if at_end else None

    def after_train_iter(self, runner) -> None:
        if runner.inner_iter + 1 == len(runner.data_loader):
            self._trained_rng = rng_states()
        if not runner.accelerator.sync_gradients:
            return
        signum = agreed_stop(runner.accelerator, self.interrupts.requested)
        if signum:
            self._stop(runner, signum, runner.iter + 1, epoch=runner.epoch, inner_iter=runner.inner_iter + 1)

    def after_train_epoch(self, runner) -> None:
        signum = agreed_stop(runner.accelerator, self.interrupts.requested)
        if signum:
            self._stop(runner, signum, runner.iter, epoch=runner.epoch + 1, inner_iter=0)

    def _between_eval_batches(self, runner) -> None:
        """Every process, after each batch of the evaluation at an epoch's end: on a stop, save the
        epoch's end (its training done, its evaluation not) and stop."""
        signum = agreed_stop(runner.accelerator, self.interrupts.requested)
        if signum:
            set_rng_states(self._trained_rng)
            self._stop(runner, signum, runner.iter, epoch=runner.epoch, inner_iter=len(runner.data_loader))

    def _stop(self, runner, signum: int, done: int, **position: int) -> None:
        if self.writer.last_saved is None or self.writer.last_saved[0] != done:  # no checkpoint of this moment yet
            self.writer.save(runner, checkpoint_name(iteration=done), iter=done, **position)
        name, saved = signal.Signals(signum).name, self.writer.last_saved[1]
        runner.logger.warning("%s after iteration %d: saved %s; resume with --resume_from=auto", name, done, saved)
        raise InterruptedRun(f"{name} after iteration {done}; saved {saved}", exit_code(signum))
