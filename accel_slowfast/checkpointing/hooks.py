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

import signal
from typing import Any

from accel_slowfast.checkpointing.names import checkpoint_name
from accel_slowfast.checkpointing.writer import CheckpointWriter
from accel_slowfast.interrupts import InterruptedRun, Interrupts, agreed_stop, exit_code, rng_states, set_rng_states


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
