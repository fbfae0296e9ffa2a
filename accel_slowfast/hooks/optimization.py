"""Hooks of the optimisation: the backward and optimizer step, and the weights' moving average.

(The LR and momentum schedule hooks live with their formulas in ``schedules.py``.)

==================== ============ ============================================================
hook                 priority     does
==================== ============ ============================================================
``OptimizerHook``    ABOVE_NORMAL backward, L2 gradient clipping, step (accumulation aware); a
                                  NaN/inf loss stops the run (or skips the step)
``EMAHook``          NORMAL       mmcv's weight average, swapped in for evaluation and checkpoints
==================== ============ ============================================================
"""

from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel

from accel_slowfast.faults import NonFiniteLossError, any_process
from accel_slowfast.workdir import find_resume_checkpoint


class OptimizerHook:
    """Backward, optional L2 gradient clipping and the optimizer step, in ``after_train_iter``.

    Inside the runner's ``accelerator.accumulate`` block Accelerate scales the loss by
    ``1 / gradient_accumulation_steps``, skips the gradient all-reduce on all but the last
    micro-batch, and turns ``step``/``zero_grad`` into no-ops there: N micro-batches make one step.

    A NaN/inf loss (on any process) raises ``NonFiniteLossError`` naming the iteration and the
    last checkpoint, before anything is stepped; with ``skip_nonfinite`` the accumulation window
    is dropped instead (no step) and counted in ``runner.meta["skipped_steps"]``. The check
    reads one value per iteration: the price of never stepping on a NaN.
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, grad_clip: float = 0.0, skip_nonfinite: bool = False):
        self.grad_clip, self.skip_nonfinite = grad_clip, skip_nonfinite

    def after_train_iter(self, runner) -> None:
        accelerator = runner.accelerator
        loss = runner.outputs["loss"]
        if any_process(accelerator, not bool(torch.isfinite(loss.detach()).all())):
            self._nonfinite(runner, float(loss.detach().float().mean()))
            return
        accelerator.backward(loss)
        if accelerator.sync_gradients and self.grad_clip > 0:
            grad_norm = accelerator.clip_grad_norm_(runner.model.parameters(), self.grad_clip)
            runner.log_buffer.update({"grad_norm": grad_norm})
        runner.optimizer.step()
        runner.optimizer.zero_grad()

    def _nonfinite(self, runner, value: float) -> None:
        where = f"iteration {runner.iter + 1} (epoch {runner.epoch + 1}, iteration {runner.inner_iter + 1} of it)"
        if not self.skip_nonfinite:
            last = find_resume_checkpoint(runner.work_dir)
            raise NonFiniteLossError(
                f"loss is {value} at {where}; nothing was stepped. The last good checkpoint is "
                f"{last or 'none yet'}. Lower lr, keep grad_clip on, or set skip_nonfinite_loss to skip such steps.")
        runner.meta["skipped_steps"] = runner.meta.get("skipped_steps", 0) + 1
        runner.logger.warning("loss is %s at %s: optimizer step skipped (%d so far)", value, where,
                              runner.meta["skipped_steps"])
        if runner.accelerator.sync_gradients:  # drop the whole accumulation window
            runner.optimizer.zero_grad()


class EMAHook:
    """mmcv's ``EMAHook``: an exponential moving average of every parameter.

    After train iteration ``i`` (0-based, global) with ``i % interval == 0``::

        m = min(momentum ** interval, (1 + i) / (warm_up + i))
        ema = (1 - m) * ema + m * param

    As in mmcv, ``after_train_epoch`` swaps the averaged weights into the model, so evaluation, the
    best checkpoint and the epoch checkpoint see them, and ``before_train_epoch`` swaps the trained
    weights back. After the run the model holds the averaged weights. The hook is checkpointable
    (``state_dict``/``load_state_dict``): register it with ``accelerator.register_for_checkpointing``
    before ``load_state``; ``swapped`` records which copy the model holds, so a resumed run continues
    exactly. Only parameters are averaged (BatchNorm statistics are the model's), as in mmcv.
    """

    priority = "NORMAL"  # after OptimizerHook (ABOVE_NORMAL) stepped, before EvalHook (LOW)

    def __init__(self, model: torch.nn.Module, momentum: float = 2.0e-4, interval: int = 1, warm_up: int = 100):
        if not 0 < momentum < 1 or interval < 1 or warm_up < 1:
            raise ValueError(f"EMAHook needs 0 < momentum < 1, interval >= 1, warm_up >= 1; got {momentum}, "
                             f"{interval}, {warm_up}")
        self.momentum, self.interval, self.warm_up = momentum**interval, interval, warm_up
        self.params = dict(extract_model_from_parallel(model).named_parameters())
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        self.swapped = False  # True between after_train_epoch and the next before_train_epoch

    def after_train_iter(self, runner) -> None:
        step = runner.iter
        if step % self.interval:
            return
        momentum = min(self.momentum, (1 + step) / (self.warm_up + step))
        with torch.no_grad():
            for name, param in self.params.items():
                self.shadow[name].mul_(1 - momentum).add_(param.detach(), alpha=momentum)

    def after_train_epoch(self, runner) -> None:
        self._swap()

    def before_train_epoch(self, runner) -> None:
        if self.swapped:
            self._swap()

    @torch.no_grad()
    def _swap(self) -> None:
        for name, param in self.params.items():
            trained = param.detach().clone()
            param.copy_(self.shadow[name])
            self.shadow[name].copy_(trained)
        self.swapped = not self.swapped

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "swapped": self.swapped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("the checkpoint's EMA weights do not match the model's parameters")
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        self.swapped = bool(state["swapped"])
