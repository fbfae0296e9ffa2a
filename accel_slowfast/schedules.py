"""Learning-rate and momentum schedules of mmcv 1.x (``LrUpdaterHook`` and ``MomentumUpdaterHook``
families): pure formulas, and the two hooks that write them into the optimizer.

The hooks compute every value from ``(runner.epoch, runner.iter)`` alone and set it before each
iteration, so every process agrees and nothing is "stepped": a resumed run needs no scheduler
state. The base values live in the optimizer's param groups (``initial_lr``,
``initial_momentum``), which its state dict keeps.

``progress`` p is the epoch (``by_epoch``) or the global iteration, both 0-based; P is
``max_epochs`` or ``max_iters``; ``cos(a, b, f) = b + 0.5 (a - b) (cos(pi f) + 1)``.

================ ================================================= ==================================
``lr_policy``    regular LR                                        mmcv hook
================ ================================================= ==================================
fixed            base                                              FixedLrUpdaterHook
step             base * gamma**k (k decays so far), >= min_lr      StepLrUpdaterHook
exp              base * gamma**p                                   ExpLrUpdaterHook
poly             (base - min_lr) * (1 - p/P)**power + min_lr       PolyLrUpdaterHook
inv              base * (1 + gamma*p)**(-power)                    InvLrUpdaterHook
cosine           cos(base, target, p/P)                            CosineAnnealingLrUpdaterHook
flat-cosine      base until s = round(P*start), then cosine on s..P FlatCosineAnnealingLrUpdaterHook
cosine-restart   weight * cosine within each period                CosineRestartLrUpdaterHook
one-cycle        per iteration, ``one_cycle_lr``; no warmup        OneCycleLrUpdaterHook
================ ================================================= ==================================

Warmup multiplies the regular LR during the first ``warmup_iters`` global iterations
(``warmup_factor``); with ``by_epoch`` the regular LR is the current epoch's. Momentum
(priority HIGH, after the LR): ``step``, ``cosine`` (as above) and ``cyclic``
(``cyclic_momentum``), written to SGD's ``momentum`` or Adam's ``betas[0]``.

Worked example (the seed recipe, REFERENCE.md §3)::

    >>> lr = regular_lr("cosine", 0.1, progress=1, max_progress=256)
    >>> round(lr * warmup_factor("linear", 100, 3400, 0.1), 9)
    0.012646583
"""

import inspect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accel_slowfast.config import Recipe

LR_POLICIES = ("fixed", "step", "exp", "poly", "inv", "cosine", "flat-cosine", "cosine-restart", "one-cycle")
COSINE_POLICIES = ("cosine", "flat-cosine", "cosine-restart")  # the ones with a min_lr_ratio
WARMUPS = ("none", "constant", "linear", "exp")
MOMENTUM_POLICIES = ("none", "step", "cosine", "cyclic")
ANNEAL_STRATEGIES = ("cos", "linear")


def annealing_cos(start: float, end: float, factor: float, weight: float = 1.0) -> float:
    """Cosine from ``weight * start + (1 - weight) * end`` (factor 0) to ``end`` (factor 1)."""
    return end + 0.5 * weight * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start: float, end: float, factor: float) -> float:
    """Straight line from ``start`` (factor 0) to ``end`` (factor 1)."""
    return start + (end - start) * factor


ANNEAL = {"cos": annealing_cos, "linear": annealing_linear}


def decays_passed(progress: int, milestones: Sequence[int] = (), every: int = 0) -> int:
    """mmcv's step exponent: ``progress // every`` when ``every`` > 0, else the milestones passed."""
    if every > 0:
        return progress // every
    for passed, milestone in enumerate(milestones):
        if progress < milestone:
            return passed
    return len(milestones)


def regular_lr(
    policy: str,
    base_lr: float,
    progress: int,
    max_progress: int,
    *,
    min_lr: float = 0.0,
    min_lr_ratio: float = 0.0,
    steps: Sequence[int] = (),
    step_every: int = 0,
    gamma: float = 0.1,
    power: float = 1.0,
    start_percent: float = 0.75,
    periods: Sequence[int] = (),
    restart_weights: Sequence[float] = (),
) -> float:
    """The learning rate before warmup, for every policy but ``one-cycle``.

    Args:
        policy: one of ``LR_POLICIES`` except ``one-cycle``.
        base_lr: the optimizer's initial learning rate.
        progress: the epoch (``by_epoch``) or the global iteration, 0-based.
        max_progress: ``max_epochs`` or ``max_iters``.
        min_lr: final LR of ``cosine``/``flat-cosine``/``cosine-restart``/``poly``; floor of ``step``.
        min_lr_ratio: if > 0, the cosine policies end at ``base_lr * min_lr_ratio`` instead.
        steps: ``step`` milestones, in the unit of ``progress``.
        step_every: if > 0, ``step`` decays every this many units instead of at ``steps``.
        gamma: decay factor of ``step`` (per decay), ``exp`` (per unit) and ``inv``.
        power: exponent of ``poly`` and ``inv``.
        start_percent: ``flat-cosine`` keeps ``base_lr`` for this fraction of ``max_progress``.
        periods: ``cosine-restart`` cycle lengths; together they must exceed the last ``progress``.
        restart_weights: ``cosine-restart`` peak of each cycle as a fraction of ``base_lr``
            (empty: all 1).
    """
    target = base_lr * min_lr_ratio if min_lr_ratio > 0 else min_lr
    if policy == "fixed":
        return base_lr
    if policy == "step":
        return max(base_lr * gamma ** decays_passed(progress, steps, step_every), min_lr)
    if policy == "exp":
        return base_lr * gamma**progress
    if policy == "poly":
        return (base_lr - min_lr) * (1 - progress / max_progress) ** power + min_lr
    if policy == "inv":
        return base_lr * (1 + gamma * progress) ** (-power)
    if policy == "cosine":
        return annealing_cos(base_lr, target, progress / max_progress)
    if policy == "flat-cosine":
        start = round(max_progress * start_percent)  # Python's round, as mmcv: round(22.5) == 22
        if progress < start:
            return base_lr
        return annealing_cos(base_lr, target, (progress - start) / (max_progress - start))
    if policy == "cosine-restart":
        weights = restart_weights or [1.0] * len(periods)
        cycle_start = 0
        for period, weight in zip(periods, weights, strict=True):
            if progress < cycle_start + period:
                return annealing_cos(base_lr, target, (progress - cycle_start) / period, weight)
            cycle_start += period
        raise ValueError(f"cosine-restart: progress {progress} is past the last period (periods {list(periods)} "
                         f"sum to {cycle_start}); lengthen 'restart_periods'")
    if policy == "one-cycle":
        raise ValueError("one-cycle is iteration based and has its own warm-up: use one_cycle_lr")
    raise ValueError(f"unknown lr_policy {policy!r}; choose one of {LR_POLICIES}")


def one_cycle_lr(
    max_lr: float,
    cur_iter: int,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1.0e4,
    three_phase: bool = False,
) -> float:
    """mmcv's one-cycle LR at global iteration ``cur_iter`` (0-based) of a ``total_steps`` cycle.

    From ``max_lr / div_factor`` up to ``max_lr`` by iteration ``pct_start * total_steps - 1``,
    then down to ``max_lr / div_factor / final_div_factor`` at ``total_steps - 1``. With
    ``three_phase`` it first comes back to the start LR at ``2 * pct_start * total_steps - 2``
    and anneals to the final LR in a third phase.
    """
    initial = max_lr / div_factor
    rise_end = float(pct_start * total_steps) - 1
    if three_phase:  # (last iteration of the phase, start and end LR as multiples of `initial`)
        phases = [(rise_end, 1, div_factor), (float(2 * pct_start * total_steps) - 2, div_factor, 1),
                  (total_steps - 1, 1, 1 / final_div_factor)]
    else:
        phases = [(rise_end, 1, div_factor), (total_steps - 1, div_factor, 1 / final_div_factor)]
    anneal = ANNEAL[anneal_strategy]
    start = 0.0
    for end, start_ratio, end_ratio in phases:
        if cur_iter <= end:
            if end == start:  # an empty phase (mmcv divides by zero here): its end value
                return initial * end_ratio
            return anneal(initial * start_ratio, initial * end_ratio, (cur_iter - start) / (end - start))
        start = end
    raise ValueError(f"one-cycle: iteration {cur_iter} is past the cycle's {total_steps} steps; "
                     "raise 'one_cycle_total_steps' (0 uses the run's iterations)")


def warmup_factor(warmup: str, cur_iter: int, warmup_iters: int, ratio: float) -> float:
    """Multiplier applied to the regular LR at global iteration ``cur_iter`` (0-based).

    Returns 1.0 once ``cur_iter >= warmup_iters`` or when ``warmup`` is ``none``.
    """
    if warmup == "none" or cur_iter >= warmup_iters:
        return 1.0
    if warmup == "constant":
        return ratio
    if warmup == "linear":
        return 1 - (1 - cur_iter / warmup_iters) * (1 - ratio)
    if warmup == "exp":
        return ratio ** (1 - cur_iter / warmup_iters)
    raise ValueError(f"unknown warmup {warmup!r}; choose one of {WARMUPS}")


def regular_momentum(
    policy: str,
    base_momentum: float,
    progress: int,
    max_progress: int,
    *,
    steps: Sequence[int] = (),
    step_every: int = 0,
    gamma: float = 0.5,
    min_momentum: float = 0.0,
    min_momentum_ratio: float = 0.0,
) -> float:
    """mmcv's ``step`` (StepMomentumUpdaterHook) and ``cosine`` (CosineAnnealingMomentumUpdaterHook).

    Same arguments as ``regular_lr``; ``min_momentum`` is the floor of ``step`` and the end of
    ``cosine`` (``base_momentum * min_momentum_ratio`` when that is > 0).
    """
    if policy == "step":
        return max(base_momentum * gamma ** decays_passed(progress, steps, step_every), min_momentum)
    if policy == "cosine":
        target = base_momentum * min_momentum_ratio if min_momentum_ratio > 0 else min_momentum
        return annealing_cos(base_momentum, target, progress / max_progress)
    raise ValueError(f"momentum policy {policy!r} has no regular formula; choose step or cosine")


def cyclic_momentum(
    base_momentum: float,
    cur_iter: int,
    max_iters: int,
    *,
    target_ratio: Sequence[float] = (0.85 / 0.95, 1.0),
    cyclic_times: int = 1,
    step_ratio_up: float = 0.4,
    anneal_strategy: str = "cos",
    gamma: float = 1.0,
) -> float:
    """mmcv's ``CyclicMomentumUpdaterHook`` at global iteration ``cur_iter`` (always per iteration).

    The run is cut into ``cyclic_times`` cycles of ``max_iters // cyclic_times`` iterations. In
    each, momentum goes from the base to ``base * target_ratio[0]`` over the first
    ``int(step_ratio_up * cycle)`` iterations, then to ``base * target_ratio[1]``. ``gamma`` < 1
    shrinks the dip by ``gamma**cycle_index``.
    """
    cycle_len = max_iters // cyclic_times
    up_len = int(step_ratio_up * cycle_len)
    cycle, pos = divmod(cur_iter, cycle_len)
    scale = gamma**cycle
    low_ratio = 1 - scale + target_ratio[0] * scale
    anneal = ANNEAL[anneal_strategy]
    if pos < up_len:
        return anneal(base_momentum, base_momentum * low_ratio, pos / up_len)
    return anneal(base_momentum * low_ratio, base_momentum * target_ratio[1], (pos - up_len) / (cycle_len - up_len))


def _keyword_args(function) -> set[str]:
    return {name for name, p in inspect.signature(function).parameters.items() if p.kind is p.KEYWORD_ONLY}


def _check_args(hook: str, policy: str, given: dict[str, Any], allowed: set[str]) -> None:
    if set(given) - allowed:
        raise TypeError(f"{hook}({policy!r}) got unknown arguments {sorted(set(given) - allowed)}; "
                        f"it takes {sorted(allowed)}")


class LrScheduleHook:
    """mmcv's ``LrUpdaterHook`` family: regular policy (by epoch or iteration) times warmup (by iteration).

    Args:
        policy: one of ``LR_POLICIES``.
        by_epoch: the regular LR follows the epoch (fixed within it) instead of the iteration.
            ``one-cycle`` is always per iteration.
        warmup: one of ``WARMUPS``; ignored by ``one-cycle`` (its rise is the warm-up).
        warmup_epochs: warmup length in epochs (mmcv's ``warmup_by_epoch``), applied per iteration.
        warmup_iters: warmup length in iterations; when > 0 it replaces ``warmup_epochs``.
        warmup_ratio: LR factor at the first warmup iteration.
        **policy_args: the keyword arguments of ``regular_lr``, or for ``one-cycle`` those of
            ``one_cycle_lr`` plus ``total_steps`` (0: the run's ``max_iters``). The param
            groups' ``initial_lr`` is the base LR (``one-cycle``: the peak ``max_lr``).
    """

    priority = "VERY_HIGH"

    def __init__(
        self,
        policy: str = "cosine",
        *,
        by_epoch: bool = True,
        warmup: str = "none",
        warmup_epochs: int = 0,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        **policy_args: Any,
    ):
        if policy not in LR_POLICIES:
            raise ValueError(f"unknown lr_policy {policy!r}; choose one of {LR_POLICIES}")
        if warmup not in WARMUPS:
            raise ValueError(f"unknown warmup {warmup!r}; choose one of {WARMUPS}")
        self.total_steps = policy_args.pop("total_steps", 0) if policy == "one-cycle" else 0
        allowed = _keyword_args(one_cycle_lr if policy == "one-cycle" else regular_lr)
        _check_args("LrScheduleHook", policy, policy_args, allowed)
        self.policy, self.by_epoch, self.policy_args = policy, by_epoch, policy_args
        self.warmup, self.warmup_epochs, self.warmup_iters = warmup, warmup_epochs, warmup_iters
        self.warmup_ratio = warmup_ratio

    def before_run(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])  # kept in the optimizer state across resumes
        if self.policy == "one-cycle" and 0 < self.total_steps < runner.max_iters:
            raise ValueError(f"one_cycle_total_steps ({self.total_steps}) is below the run's {runner.max_iters} "
                             "iterations; raise it or set 0 to use the run's iterations")
        if self.policy == "cosine-restart":
            covered, horizon = sum(self.policy_args.get("periods", ())), self._max_progress(runner)
            if covered < horizon:
                unit = "epochs" if self.by_epoch else "iterations"
                raise ValueError(f"restart_periods cover {covered} {unit} but the run has {horizon}; "
                                 "lengthen the last period or add one")

    def _max_progress(self, runner) -> int:
        return runner.max_epochs if self.by_epoch else runner.max_iters

    def _lr_at(self, base_lr: float, epoch: int, cur_iter: int, iters_per_epoch: int, runner) -> float:
        """The LR of global iteration ``cur_iter`` (0-based), which lies in epoch ``epoch``."""
        if self.policy == "one-cycle":
            return one_cycle_lr(base_lr, cur_iter, self.total_steps or runner.max_iters, **self.policy_args)
        progress = epoch if self.by_epoch else cur_iter
        lr = regular_lr(self.policy, base_lr, progress, self._max_progress(runner), **self.policy_args)
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

    Args:
        policy: ``step``, ``cosine`` or ``cyclic``.
        by_epoch: ``step``/``cosine`` follow the epoch instead of the iteration; ``cyclic`` is
            always per iteration.
        **policy_args: the keyword arguments of ``regular_momentum`` or ``cyclic_momentum``.
    """

    priority = "HIGH"

    def __init__(self, policy: str, *, by_epoch: bool = True, **policy_args: Any):
        if policy not in MOMENTUM_POLICIES or policy == "none":
            raise ValueError(f"unknown momentum policy {policy!r}; choose one of {MOMENTUM_POLICIES[1:]}")
        allowed = _keyword_args(cyclic_momentum if policy == "cyclic" else regular_momentum)
        _check_args("MomentumScheduleHook", policy, policy_args, allowed)
        self.policy, self.by_epoch, self.policy_args = policy, by_epoch, policy_args

    def before_run(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            if "momentum" in group:
                group.setdefault("initial_momentum", group["momentum"])
            elif "betas" in group:
                group.setdefault("initial_momentum", group["betas"][0])
            else:
                raise ValueError(f"momentum_policy {self.policy!r}: the optimizer's param groups have neither "
                                 "'momentum' nor 'betas'; set momentum_policy: none")
        if self.policy == "cyclic" and runner.max_iters < self.policy_args.get("cyclic_times", 1):
            raise ValueError(f"momentum_cyclic_times exceeds the run's {runner.max_iters} iterations")

    def _momentum_at(self, base_momentum: float, epoch: int, cur_iter: int, runner) -> float:
        """The momentum of global iteration ``cur_iter`` (0-based), which lies in epoch ``epoch``."""
        if self.policy == "cyclic":
            return cyclic_momentum(base_momentum, cur_iter, runner.max_iters, **self.policy_args)
        if self.by_epoch:
            return regular_momentum(self.policy, base_momentum, epoch, runner.max_epochs, **self.policy_args)
        return regular_momentum(self.policy, base_momentum, cur_iter, runner.max_iters, **self.policy_args)

    def before_train_iter(self, runner) -> None:
        for group in runner.optimizer.param_groups:
            value = self._momentum_at(group["initial_momentum"], runner.epoch, runner.iter, runner)
            if "momentum" in group:
                group["momentum"] = value
            else:
                group["betas"] = (value, *group["betas"][1:])


def build_lr_hook(recipe: "Recipe") -> LrScheduleHook:
    """The recipe's LR schedule (``lr_policy`` and its keys, ``warmup*``)."""
    if recipe.lr_policy == "one-cycle":
        policy_args = dict(
            total_steps=recipe.one_cycle_total_steps, pct_start=recipe.one_cycle_pct_start,
            anneal_strategy=recipe.one_cycle_anneal, div_factor=recipe.one_cycle_div_factor,
            final_div_factor=recipe.one_cycle_final_div_factor, three_phase=recipe.one_cycle_three_phase)
    else:
        policy_args = dict(
            min_lr=recipe.min_lr, min_lr_ratio=recipe.min_lr_ratio, steps=tuple(recipe.lr_steps),
            step_every=recipe.lr_step_every, gamma=recipe.lr_gamma, power=recipe.lr_power,
            start_percent=recipe.flat_cosine_start, periods=tuple(recipe.restart_periods),
            restart_weights=tuple(recipe.restart_weights))
    return LrScheduleHook(recipe.lr_policy, by_epoch=recipe.by_epoch, warmup=recipe.warmup,
                          warmup_epochs=recipe.warmup_epochs, warmup_iters=recipe.warmup_iters,
                          warmup_ratio=recipe.warmup_ratio, **policy_args)


def build_momentum_hook(recipe: "Recipe") -> MomentumScheduleHook | None:
    """The recipe's momentum schedule, or None for ``momentum_policy: none``."""
    if recipe.momentum_policy == "none":
        return None
    if recipe.momentum_policy == "cyclic":
        policy_args = dict(target_ratio=tuple(recipe.momentum_target_ratio),
                           cyclic_times=recipe.momentum_cyclic_times, step_ratio_up=recipe.momentum_step_ratio_up)
    else:
        policy_args = dict(steps=tuple(recipe.momentum_steps), step_every=recipe.momentum_step_every,
                           gamma=recipe.momentum_gamma, min_momentum=recipe.min_momentum,
                           min_momentum_ratio=recipe.min_momentum_ratio)
    return MomentumScheduleHook(recipe.momentum_policy, by_epoch=recipe.by_epoch, **policy_args)
