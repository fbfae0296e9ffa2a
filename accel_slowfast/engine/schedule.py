"""The run's learning rate and momentum at each iteration, built from the recipe's schedule keys.

    lr_schedule = build_lr_schedule(recipe.schedule_args, scaled_lr(recipe.optimization_args, num_processes))
    lr = lr_schedule(Position(epoch=0, iteration=0, inner_iter=0, iters_per_epoch=100, max_epochs=256,
                              max_iters=25600))

Each schedule is pure: the value depends on the ``Position`` alone, never on what the optimizer
holds, so every process agrees and a resumed run needs no scheduler state. The runner writes
the values into the optimizer before each iteration. The maths are ``schedule_formulas.py``'s (mmcv's
formulas); this module picks each formula's recipe keys by name and applies the one LR scaling
rule (``scaled_lr``), so the recipe's ``lr`` is the LR the optimizer starts with.
"""

from dataclasses import dataclass
from typing import Any

from accel_slowfast.multigrid import MultigridSchedule
from accel_slowfast.recipe.optimization import OptimizationArgs, ScheduleArgs
from accel_slowfast.schedule_formulas import (
    LR_POLICIES,
    MOMENTUM_POLICIES,
    WARMUPS,
    cyclic_momentum,
    one_cycle_lr,
    regular_lr,
    regular_momentum,
    warmup_factor,
)


@dataclass(frozen=True)
class Position:
    """Where the run is: the epoch and the global iteration (0-based), the iteration within the
    epoch, the epoch's iterations (they vary with multigrid) and the run's length."""

    epoch: int
    iteration: int
    inner_iter: int
    iters_per_epoch: int
    max_epochs: int
    max_iters: int


def scaled_lr(optimization: OptimizationArgs, num_processes: int) -> float:
    """``lr``, scaled by the linear rule when ``base_batch_size`` is set: by the clips of an optimizer
    step (processes x batch_size x accumulation, repeats of one video counted as clips) over it.
    (A multigrid long cycle scales it further by its batch factor: ``LrSchedule``.)"""
    if not optimization.base_batch_size:
        return optimization.lr
    clips = num_processes * optimization.batch_size * optimization.gradient_accumulation_steps
    return optimization.lr * clips / optimization.base_batch_size


@dataclass(frozen=True)
class LrSchedule:
    """mmcv's ``LrUpdaterHook`` family: regular policy (by epoch or iteration) times warmup (by iteration).

    ``policy_keys`` are the keyword arguments of ``regular_lr``, or of ``one_cycle_lr`` for
    ``one-cycle`` (whose rise is its warm-up: the ``warmup*`` fields are ignored, and ``lr`` is the peak).
    With a ``multigrid`` schedule the iterations per epoch vary, so warmup runs over
    ``warmup_epochs`` of fractional epochs (epoch + inner_iter / iters_per_epoch), as PySlowFast's;
    its long cycle sets the regular LR to ``lr x multigrid.lr_factor(epoch)`` (its batch factor).
    """

    lr: float
    policy: str
    by_epoch: bool
    warmup: str
    warmup_epochs: int
    warmup_iters: int
    warmup_ratio: float
    one_cycle_total_steps: int
    policy_keys: dict[str, Any]
    multigrid: MultigridSchedule | None = None

    def __post_init__(self):
        if self.policy not in LR_POLICIES:
            raise ValueError(f"unknown lr_policy {self.policy!r}; choose one of {LR_POLICIES}")
        if self.warmup not in WARMUPS:
            raise ValueError(f"unknown warmup {self.warmup!r}; choose one of {WARMUPS}")

    def check_run(self, max_epochs: int, max_iters: int) -> None:
        """Fail before the first iteration when the run is longer than the schedule covers."""
        if self.policy == "one-cycle" and 0 < self.one_cycle_total_steps < max_iters:
            raise ValueError(f"one_cycle_total_steps ({self.one_cycle_total_steps}) is below the run's "
                             f"{max_iters} iterations; raise it or set 0 to use the run's iterations")
        if self.policy == "cosine-restart":
            covered, horizon = sum(self.policy_keys["restart_periods"]), max_epochs if self.by_epoch else max_iters
            if covered < horizon:
                unit = "epochs" if self.by_epoch else "iterations"
                raise ValueError(f"restart_periods cover {covered} {unit} but the run has {horizon}; "
                                 "lengthen the last period or add one")

    def __call__(self, at: Position) -> float:
        if self.policy == "one-cycle":
            return one_cycle_lr(self.lr, at.iteration, self.one_cycle_total_steps or at.max_iters, **self.policy_keys)
        if self.multigrid is not None and self.multigrid.long_cycle:
            lr = self.lr * self.multigrid.lr_factor(at.epoch)
        else:
            progress, max_progress = (at.epoch, at.max_epochs) if self.by_epoch else (at.iteration, at.max_iters)
            lr = regular_lr(self.policy, self.lr, progress, max_progress, **self.policy_keys)
        if self.multigrid is not None:
            return lr * warmup_factor(self.warmup, at.epoch + at.inner_iter / at.iters_per_epoch, self.warmup_epochs,
                                      self.warmup_ratio)
        warmup_iters = self.warmup_iters or self.warmup_epochs * at.iters_per_epoch
        return lr * warmup_factor(self.warmup, at.iteration, warmup_iters, self.warmup_ratio)


@dataclass(frozen=True)
class MomentumSchedule:
    """mmcv's ``MomentumUpdaterHook`` family (no warmup): ``step``, ``cosine`` (by ``by_epoch``) or
    ``cyclic`` (always per iteration), from ``momentum`` (SGD's momentum or Adam's beta1).
    ``policy_keys`` are the keyword arguments of ``regular_momentum`` or ``cyclic_momentum``."""

    momentum: float
    policy: str
    by_epoch: bool
    policy_keys: dict[str, Any]

    def __post_init__(self):
        if self.policy not in MOMENTUM_POLICIES[1:]:
            raise ValueError(f"unknown momentum policy {self.policy!r}; choose one of {MOMENTUM_POLICIES[1:]}")

    def check_run(self, max_epochs: int, max_iters: int) -> None:
        if self.policy == "cyclic" and max_iters < self.policy_keys["momentum_cyclic_times"]:
            raise ValueError(f"momentum_cyclic_times exceeds the run's {max_iters} iterations")

    def __call__(self, at: Position) -> float:
        if self.policy == "cyclic":
            return cyclic_momentum(self.momentum, at.iteration, at.max_iters, **self.policy_keys)
        progress, max_progress = (at.epoch, at.max_epochs) if self.by_epoch else (at.iteration, at.max_iters)
        return regular_momentum(self.policy, self.momentum, progress, max_progress, **self.policy_keys)


def build_lr_schedule(schedule: ScheduleArgs, lr: float, multigrid: MultigridSchedule | None = None) -> LrSchedule:
    """The recipe's LR schedule (``lr_policy`` and its keys, ``warmup*``) from ``lr``, the recipe's
    ``lr`` as ``scaled_lr`` scales it; ``multigrid``: the run's multigrid schedule, if it has one
    (the LR follows its stages)."""
    if schedule.lr_policy == "one-cycle":
        keys = dict(one_cycle_pct_start=schedule.one_cycle_pct_start, one_cycle_anneal=schedule.one_cycle_anneal,
                    one_cycle_div_factor=schedule.one_cycle_div_factor,
                    one_cycle_final_div_factor=schedule.one_cycle_final_div_factor,
                    one_cycle_three_phase=schedule.one_cycle_three_phase)
    else:
        keys = dict(min_lr=schedule.min_lr, min_lr_ratio=schedule.min_lr_ratio, lr_steps=schedule.lr_steps,
                    lr_step_every=schedule.lr_step_every, lr_gamma=schedule.lr_gamma, lr_power=schedule.lr_power,
                    flat_cosine_start=schedule.flat_cosine_start, restart_periods=schedule.restart_periods,
                    restart_weights=schedule.restart_weights)
    return LrSchedule(lr, schedule.lr_policy, schedule.by_epoch, schedule.warmup, schedule.warmup_epochs,
                      schedule.warmup_iters, schedule.warmup_ratio, schedule.one_cycle_total_steps, keys, multigrid)


def build_momentum_schedule(schedule: ScheduleArgs, momentum: float) -> MomentumSchedule | None:
    """The recipe's momentum schedule from ``momentum`` (the optimizer's: ``optimizer_momentum``),
    or None for ``momentum_policy: none``."""
    if schedule.momentum_policy == "none":
        return None
    if schedule.momentum_policy == "cyclic":
        keys = dict(momentum_target_ratio=schedule.momentum_target_ratio,
                    momentum_cyclic_times=schedule.momentum_cyclic_times,
                    momentum_step_ratio_up=schedule.momentum_step_ratio_up)
    else:
        keys = dict(momentum_steps=schedule.momentum_steps, momentum_step_every=schedule.momentum_step_every,
                    momentum_gamma=schedule.momentum_gamma, min_momentum=schedule.min_momentum,
                    min_momentum_ratio=schedule.min_momentum_ratio)
    return MomentumSchedule(momentum, schedule.momentum_policy, schedule.by_epoch, keys)


def optimizer_momentum(param_group: dict[str, Any]) -> float:
    """SGD's ``momentum`` or the Adam family's ``betas[0]``: what a momentum schedule drives."""
    if "momentum" in param_group:
        return param_group["momentum"]
    if "betas" in param_group:
        return param_group["betas"][0]
    raise ValueError("momentum_policy: the optimizer's param groups have neither 'momentum' nor 'betas'; "
                     "set momentum_policy: none")


def set_lr_and_momentum(optimizer: Any, lr: float | None, momentum: float | None) -> None:
    """Write ``lr`` and ``momentum`` (each unless None) into every param group of ``optimizer``."""
    for group in optimizer.param_groups:
        if lr is not None:
            group["lr"] = lr
        if momentum is None:
            continue
        if "momentum" in group:
            group["momentum"] = momentum
        else:
            group["betas"] = (momentum, *group["betas"][1:])
