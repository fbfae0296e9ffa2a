"""Hooks of the optimisation: the LR and momentum schedules, the backward and optimizer step,
and the weights' moving average.

======================== ============ ========================================================
hook                     priority     does
======================== ============ ========================================================
``LrScheduleHook``       VERY_HIGH    the LR of every param group before each iteration
                                      (``schedules.py``'s formulas)
``MomentumScheduleHook`` HIGH         momentum (SGD) or beta1 (Adam), ``momentum_policy``
``OptimizerHook``        ABOVE_NORMAL backward, L2 gradient clipping, step (accumulation aware);
                                      a NaN/inf loss stops the run (or skips the step)
``EMAHook``              NORMAL       mmcv's weight average, swapped in for evaluation and
                                      checkpoints
======================== ============ ========================================================
"""

import inspect
from collections.abc import Callable
from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel

from accel_slowfast.checkpointing.faults import NonFiniteLossError, any_process
from accel_slowfast.checkpointing.layout import find_resume_checkpoint
from accel_slowfast.multigrid import MultigridSchedule
from accel_slowfast.recipe.recipe import Recipe
from accel_slowfast.schedules import (
    LR_POLICIES,
    MOMENTUM_POLICIES,
    WARMUPS,
    cyclic_momentum,
    one_cycle_lr,
    recipe_args,
    regular_lr,
    regular_momentum,
    warmup_factor,
)


def _lr_formula(lr_policy: str) -> Callable[..., float]:
    return one_cycle_lr if lr_policy == "one-cycle" else regular_lr


def _momentum_formula(momentum_policy: str) -> Callable[..., float]:
    return cyclic_momentum if momentum_policy == "cyclic" else regular_momentum


def _check_args(hook: str, formula: Callable[..., float], given: dict[str, Any]) -> None:
    """Fail when the hook is made, not at its first iteration, on arguments ``formula`` lacks or does not take."""
    params = {name: p for name, p in inspect.signature(formula).parameters.items() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(given) - set(params))
    missing = sorted(name for name, p in params.items() if p.default is p.empty and name not in given)
    if unknown or missing:
        raise TypeError(f"{hook}: {formula.__name__} takes {sorted(params)}; got unknown arguments {unknown}, "
                        f"missing {missing}")


class LrScheduleHook:
    """mmcv's ``LrUpdaterHook`` family: regular policy (by epoch or iteration) times warmup (by iteration).

    The keyword arguments are the recipe's keys of the same names (``one-cycle`` ignores the
    ``warmup*`` ones: its rise is the warm-up), and ``policy_args`` those of ``regular_lr``, or of
    ``one_cycle_lr`` for ``one-cycle``. The param groups' ``initial_lr`` is the base LR
    (``one-cycle``: the peak ``max_lr``).

    With a ``multigrid`` schedule the iterations per epoch vary, so warmup runs over
    ``warmup_epochs`` of fractional epochs (epoch + iteration / iterations of the epoch), as
    PySlowFast's; its long cycle sets the regular LR to ``lr x multigrid.lr_factor(epoch)``.
    """

    priority = "VERY_HIGH"

    def __init__(self, lr_policy: str, *, by_epoch: bool, warmup: str, warmup_epochs: int, warmup_iters: int,
                 warmup_ratio: float, one_cycle_total_steps: int, multigrid: MultigridSchedule | None = None,
                 **policy_args: Any):
        if lr_policy not in LR_POLICIES:
            raise ValueError(f"unknown lr_policy {lr_policy!r}; choose one of {LR_POLICIES}")
        if warmup not in WARMUPS:
            raise ValueError(f"unknown warmup {warmup!r}; choose one of {WARMUPS}")
        _check_args(f"LrScheduleHook({lr_policy!r})", _lr_formula(lr_policy), policy_args)
        self.lr_policy, self.by_epoch, self.policy_args = lr_policy, by_epoch, policy_args
        self.warmup, self.warmup_epochs, self.warmup_iters = warmup, warmup_epochs, warmup_iters
        self.warmup_ratio, self.one_cycle_total_steps = warmup_ratio, one_cycle_total_steps
        self.multigrid = multigrid

    def before_run(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])  # kept in the optimizer state across resumes
        if self.lr_policy == "one-cycle" and 0 < self.one_cycle_total_steps < runner.max_iters:
            raise ValueError(f"one_cycle_total_steps ({self.one_cycle_total_steps}) is below the run's "
                             f"{runner.max_iters} iterations; raise it or set 0 to use the run's iterations")
        if self.lr_policy == "cosine-restart":
            covered, horizon = sum(self.policy_args["restart_periods"]), self._max_progress(runner)
            if covered < horizon:
                unit = "epochs" if self.by_epoch else "iterations"
                raise ValueError(f"restart_periods cover {covered} {unit} but the run has {horizon}; "
                                 "lengthen the last period or add one")

    def _max_progress(self, runner) -> int:
        return runner.max_epochs if self.by_epoch else runner.max_iters

    def _lr_at(self, base_lr: float, epoch: int, cur_iter: int, iters_per_epoch: int, runner) -> float:
        """The LR of global iteration ``cur_iter`` (0-based), which lies in epoch ``epoch``."""
        if self.lr_policy == "one-cycle":
            total_steps = self.one_cycle_total_steps or runner.max_iters
            return one_cycle_lr(base_lr, cur_iter, total_steps, **self.policy_args)
        if self.multigrid is not None and self.multigrid.long_cycle:  # the step schedule, times the batch factor
            lr = base_lr * self.multigrid.lr_factor(epoch)
        else:
            progress = epoch if self.by_epoch else cur_iter
            lr = regular_lr(self.lr_policy, base_lr, progress, self._max_progress(runner), **self.policy_args)
        if self.multigrid is not None:
            return lr * warmup_factor(self.warmup, epoch + runner.inner_iter / iters_per_epoch, self.warmup_epochs,
                                      self.warmup_ratio)
        warmup_iters = self.warmup_iters or self.warmup_epochs * iters_per_epoch
        return lr * warmup_factor(self.warmup, cur_iter, warmup_iters, self.warmup_ratio)

    def before_train_iter(self, runner) -> None:
        iters_per_epoch = len(runner.data_loader)
        for group in runner.optimizer.param_groups:
            group["lr"] = self._lr_at(group["initial_lr"], runner.epoch, runner.iter, iters_per_epoch, runner)


class MomentumScheduleHook:
    """mmcv's ``MomentumUpdaterHook`` family (no warmup): ``step``, ``cosine`` or ``cyclic``.

    Writes SGD's ``momentum`` or, for the Adam family, ``betas[0]`` of every param group, from
    its ``initial_momentum`` (saved in the optimizer state, so resumes keep the base). Runs after
    the LR hook and before the optimizer step (priority HIGH, 30, as mmcv).

    ``momentum_policy`` is ``step``, ``cosine`` or ``cyclic`` (always per iteration, whatever
    ``by_epoch``); ``policy_args`` are the keyword arguments of ``regular_momentum`` or ``cyclic_momentum``.
    """

    priority = "HIGH"

    def __init__(self, momentum_policy: str, *, by_epoch: bool, **policy_args: Any):
        if momentum_policy not in MOMENTUM_POLICIES or momentum_policy == "none":
            raise ValueError(f"unknown momentum policy {momentum_policy!r}; choose one of {MOMENTUM_POLICIES[1:]}")
        _check_args(f"MomentumScheduleHook({momentum_policy!r})", _momentum_formula(momentum_policy), policy_args)
        self.momentum_policy, self.by_epoch, self.policy_args = momentum_policy, by_epoch, policy_args

    def before_run(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            if "momentum" in group:
                group.setdefault("initial_momentum", group["momentum"])
            elif "betas" in group:
                group.setdefault("initial_momentum", group["betas"][0])
            else:
                raise ValueError(f"momentum_policy {self.momentum_policy!r}: the optimizer's param groups have "
                                 "neither 'momentum' nor 'betas'; set momentum_policy: none")
        if self.momentum_policy == "cyclic" and runner.max_iters < self.policy_args["momentum_cyclic_times"]:
            raise ValueError(f"momentum_cyclic_times exceeds the run's {runner.max_iters} iterations")

    def _momentum_at(self, base_momentum: float, epoch: int, cur_iter: int, runner) -> float:
        """The momentum of global iteration ``cur_iter`` (0-based), which lies in epoch ``epoch``."""
        if self.momentum_policy == "cyclic":
            return cyclic_momentum(base_momentum, cur_iter, runner.max_iters, **self.policy_args)
        progress, max_progress = (epoch, runner.max_epochs) if self.by_epoch else (cur_iter, runner.max_iters)
        return regular_momentum(self.momentum_policy, base_momentum, progress, max_progress, **self.policy_args)

    def before_train_iter(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            value = self._momentum_at(group["initial_momentum"], runner.epoch, runner.iter, runner)
            if "momentum" in group:
                group["momentum"] = value
            else:
                group["betas"] = (value, *group["betas"][1:])


def build_lr_hook(recipe: Recipe, multigrid: MultigridSchedule | None = None) -> LrScheduleHook:
    """The recipe's LR schedule (``lr_policy`` and its keys, ``warmup*``), times the run's multigrid
    LR factor when it has a ``multigrid`` schedule."""
    formula = _lr_formula(recipe.lr_policy)
    return LrScheduleHook(recipe.lr_policy, **recipe_args(LrScheduleHook, recipe), **recipe_args(formula, recipe),
                          multigrid=multigrid)


def build_momentum_hook(recipe: Recipe) -> MomentumScheduleHook | None:
    """The recipe's momentum schedule, or None for ``momentum_policy: none``."""
    if recipe.momentum_policy == "none":
        return None
    formula = _momentum_formula(recipe.momentum_policy)
    return MomentumScheduleHook(recipe.momentum_policy, **recipe_args(MomentumScheduleHook, recipe),
                                **recipe_args(formula, recipe))


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
    (``state_dict``/``load_state_dict``): ``CheckpointWriter`` saves it with every checkpoint and
    ``resume.load_checkpoint`` restores it; ``swapped`` records which copy the model holds, so a
    resumed run continues exactly. Only parameters are averaged (BatchNorm statistics are the model's), as in mmcv.
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
