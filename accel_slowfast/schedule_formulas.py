"""Learning-rate and momentum schedules of mmcv 1.x (``LrUpdaterHook`` and ``MomentumUpdaterHook``
families) as pure formulas; ``engine/schedule.py`` builds them from a recipe and the runner writes
their values into the optimizer before each iteration.

Every value is computed from the run's position (epoch, global iteration) alone, so every
process agrees and nothing is "stepped": a resumed run needs no scheduler state. ``lr`` is the
recipe's ``lr`` (scaled) under one name: mmcv's ``base_lr`` in the regular policies, its peak
``max_lr`` in one-cycle.

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

The formulas name their keyword-only parameters after the recipe's keys (``lr_steps``,
``min_lr``, ``warmup_ratio``, ...; ``accel-slowfast train --help`` says what each means) and give
them no default: ``Recipe`` holds every default, and ``engine/schedule.py`` passes each formula
its keys by name; ``check_schedule_keys`` holds the checks between those keys that
``Recipe.validate`` runs. Worked example (the seed recipe: base 0.1, 256 epochs, 34 linear
warmup epochs of 100 iterations)::

    >>> lr = regular_lr("cosine", 0.1, 1, 256, min_lr=0.0, min_lr_ratio=0.0, lr_steps=(), lr_step_every=0,
    ...                 lr_gamma=0.1, lr_power=1.0, flat_cosine_start=0.75, restart_periods=(), restart_weights=())
    >>> round(lr * warmup_factor("linear", 100, 3400, 0.1), 9)
    0.012646583
"""

import math
from collections.abc import Sequence
from typing import Any

from accel_slowfast.errors import RecipeError

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


def decays_passed(progress: int, milestones: Sequence[int], every: int) -> int:
    """mmcv's step exponent: ``progress // every`` when ``every`` > 0, else the milestones passed."""
    if every > 0:
        return progress // every
    for passed, milestone in enumerate(milestones):
        if progress < milestone:
            return passed
    return len(milestones)


def regular_lr(lr_policy: str, lr: float, progress: int, max_progress: int, *, min_lr: float,
               min_lr_ratio: float, lr_steps: Sequence[int], lr_step_every: int, lr_gamma: float, lr_power: float,
               flat_cosine_start: float, restart_periods: Sequence[int], restart_weights: Sequence[float]) -> float:
    """The learning rate before warmup, for every policy but ``one-cycle``; the keyword arguments are the recipe's.

    Args:
        lr_policy: one of ``LR_POLICIES`` except ``one-cycle``.
        lr: the recipe's learning rate (scaled), where the policy starts.
        progress: the epoch (``by_epoch``) or the global iteration, 0-based: the unit of ``lr_steps``,
            ``lr_step_every`` and ``restart_periods`` (which must cover it).
        max_progress: ``max_epochs`` or ``max_iters``.
    """
    target = lr * min_lr_ratio if min_lr_ratio > 0 else min_lr
    if lr_policy == "fixed":
        return lr
    if lr_policy == "step":
        return max(lr * lr_gamma ** decays_passed(progress, lr_steps, lr_step_every), min_lr)
    if lr_policy == "exp":
        return lr * lr_gamma**progress
    if lr_policy == "poly":
        return (lr - min_lr) * (1 - progress / max_progress) ** lr_power + min_lr
    if lr_policy == "inv":
        return lr * (1 + lr_gamma * progress) ** (-lr_power)
    if lr_policy == "cosine":
        return annealing_cos(lr, target, progress / max_progress)
    if lr_policy == "flat-cosine":
        start = round(max_progress * flat_cosine_start)  # Python's round, as mmcv: round(22.5) == 22
        if progress < start:
            return lr
        return annealing_cos(lr, target, (progress - start) / (max_progress - start))
    if lr_policy == "cosine-restart":
        weights = restart_weights or [1.0] * len(restart_periods)
        cycle_start = 0
        for period, weight in zip(restart_periods, weights, strict=True):
            if progress < cycle_start + period:
                return annealing_cos(lr, target, (progress - cycle_start) / period, weight)
            cycle_start += period
        raise ValueError(f"cosine-restart: progress {progress} is past the last period (periods "
                         f"{list(restart_periods)} sum to {cycle_start}); lengthen 'restart_periods'")
    if lr_policy == "one-cycle":
        raise ValueError("one-cycle is iteration based and has its own warm-up: use one_cycle_lr")
    raise ValueError(f"unknown lr_policy {lr_policy!r}; choose one of {LR_POLICIES}")


def one_cycle_lr(lr: float, cur_iter: int, total_steps: int, *, one_cycle_pct_start: float, one_cycle_anneal: str,
                 one_cycle_div_factor: float, one_cycle_final_div_factor: float, one_cycle_three_phase: bool) -> float:
    """mmcv's one-cycle LR at global iteration ``cur_iter`` (0-based) of a ``total_steps`` cycle.

    From ``lr / div_factor`` up to ``lr`` by iteration ``pct_start * total_steps - 1``,
    then down to ``lr / div_factor / final_div_factor`` at ``total_steps - 1``. With
    ``three_phase`` it first comes back to the start LR at ``2 * pct_start * total_steps - 2``
    and anneals to the final LR in a third phase (each name with its ``one_cycle_`` prefix).
    """
    initial = lr / one_cycle_div_factor
    rise_end = float(one_cycle_pct_start * total_steps) - 1
    final = 1 / one_cycle_final_div_factor
    if one_cycle_three_phase:  # (last iteration of the phase, start and end LR as multiples of `initial`)
        fall_end = float(2 * one_cycle_pct_start * total_steps) - 2
        phases = [(rise_end, 1, one_cycle_div_factor), (fall_end, one_cycle_div_factor, 1), (total_steps - 1, 1, final)]
    else:
        phases = [(rise_end, 1, one_cycle_div_factor), (total_steps - 1, one_cycle_div_factor, final)]
    anneal = ANNEAL[one_cycle_anneal]
    start = 0.0
    for end, start_ratio, end_ratio in phases:
        if cur_iter <= end:
            if end == start:  # an empty phase (mmcv divides by zero here): its end value
                return initial * end_ratio
            return anneal(initial * start_ratio, initial * end_ratio, (cur_iter - start) / (end - start))
        start = end
    raise ValueError(f"one-cycle: iteration {cur_iter} is past the cycle's {total_steps} steps; "
                     "raise 'one_cycle_total_steps' (0 uses the run's iterations)")


def warmup_factor(warmup: str, cur_iter: int, warmup_iters: int, warmup_ratio: float) -> float:
    """Multiplier applied to the regular LR at global iteration ``cur_iter`` (0-based).

    Returns 1.0 once ``cur_iter >= warmup_iters`` or when ``warmup`` is ``none``.
    """
    if warmup == "none" or cur_iter >= warmup_iters:
        return 1.0
    if warmup == "constant":
        return warmup_ratio
    if warmup == "linear":
        return 1 - (1 - cur_iter / warmup_iters) * (1 - warmup_ratio)
    if warmup == "exp":
        return warmup_ratio ** (1 - cur_iter / warmup_iters)
    raise ValueError(f"unknown warmup {warmup!r}; choose one of {WARMUPS}")


def regular_momentum(momentum_policy: str, base_momentum: float, progress: int, max_progress: int, *,
                     momentum_steps: Sequence[int], momentum_step_every: int, momentum_gamma: float,
                     min_momentum: float, min_momentum_ratio: float) -> float:
    """mmcv's ``step`` (StepMomentumUpdaterHook) and ``cosine`` (CosineAnnealingMomentumUpdaterHook).

    As ``regular_lr``; ``min_momentum`` is the floor of ``step`` and the end of ``cosine``
    (``base_momentum * min_momentum_ratio`` when that is > 0).
    """
    if momentum_policy == "step":
        decays = decays_passed(progress, momentum_steps, momentum_step_every)
        return max(base_momentum * momentum_gamma**decays, min_momentum)
    if momentum_policy == "cosine":
        target = base_momentum * min_momentum_ratio if min_momentum_ratio > 0 else min_momentum
        return annealing_cos(base_momentum, target, progress / max_progress)
    raise ValueError(f"momentum policy {momentum_policy!r} has no regular formula; choose step or cosine")


def cyclic_momentum(base_momentum: float, cur_iter: int, max_iters: int, *, momentum_target_ratio: Sequence[float],
                    momentum_cyclic_times: int, momentum_step_ratio_up: float, anneal_strategy: str = "cos",
                    gamma: float = 1.0) -> float:
    """mmcv's ``CyclicMomentumUpdaterHook`` at global iteration ``cur_iter`` (always per iteration).

    The run is cut into ``momentum_cyclic_times`` cycles of ``max_iters // momentum_cyclic_times``
    iterations. In each, momentum goes from the base to ``base * momentum_target_ratio[0]`` over
    the first ``int(momentum_step_ratio_up * cycle)`` iterations, then to ``base *
    momentum_target_ratio[1]``. ``anneal_strategy`` and ``gamma`` are mmcv's, with no recipe key
    (so these defaults are mmcv's): ``gamma`` < 1 shrinks the dip by ``gamma**cycle_index``.
    """
    cycle_len = max_iters // momentum_cyclic_times
    up_len = int(momentum_step_ratio_up * cycle_len)
    cycle, pos = divmod(cur_iter, cycle_len)
    scale = gamma**cycle
    low_ratio = 1 - scale + momentum_target_ratio[0] * scale
    anneal = ANNEAL[anneal_strategy]
    if pos < up_len:
        return anneal(base_momentum, base_momentum * low_ratio, pos / up_len)
    end = base_momentum * momentum_target_ratio[1]
    return anneal(base_momentum * low_ratio, end, (pos - up_len) / (cycle_len - up_len))


def check_schedule_keys(recipe: Any) -> None:
    """The checks between the LR, warmup and momentum keys of a ``Recipe`` (``Recipe.validate`` calls
    it); ``RecipeError`` naming the keys and the fix."""
    for policy_key, steps_key, every_key in (("lr_policy", "lr_steps", "lr_step_every"),
                                             ("momentum_policy", "momentum_steps", "momentum_step_every")):
        steps, every = getattr(recipe, steps_key), getattr(recipe, every_key)
        if getattr(recipe, policy_key) != "step":
            continue
        if not steps and not every:
            raise RecipeError(f"{policy_key} 'step' needs '{steps_key}' (milestones, e.g. --{steps_key} 90 130) "
                              f"or '{every_key}' (a decay interval, e.g. --{every_key} 30)")
        if steps and every:
            raise RecipeError(f"set '{steps_key}' (milestones) or '{every_key}' (an interval), not both")
        if steps != sorted(set(steps)) or min(steps, default=1) < 1:
            raise RecipeError(f"recipe key '{steps_key}' must be positive and increasing, got {steps}")
    for policy_key, cosine, min_key, ratio_key in (("lr_policy", COSINE_POLICIES, "min_lr", "min_lr_ratio"),
                                                   ("momentum_policy", ("cosine",), "min_momentum",
                                                    "min_momentum_ratio")):
        if getattr(recipe, ratio_key) > 0 and getattr(recipe, policy_key) not in cosine:
            raise RecipeError(f"recipe key '{ratio_key}' applies to {policy_key} {' / '.join(cosine)} only; "
                              f"for '{getattr(recipe, policy_key)}' use '{min_key}' or set {ratio_key}: 0.0")
        if getattr(recipe, ratio_key) > 0 and getattr(recipe, min_key) > 0:
            raise RecipeError(f"set '{min_key}' (a value) or '{ratio_key}' (a fraction), not both")
    if recipe.lr_policy == "cosine-restart":
        periods = recipe.restart_periods
        if not periods or min(periods) < 1:
            raise RecipeError("lr_policy 'cosine-restart' needs 'restart_periods' (positive cycle lengths), "
                              "e.g. --restart_periods 4 6")
        if recipe.restart_weights and len(recipe.restart_weights) != len(periods):
            raise RecipeError(f"recipe key 'restart_weights' needs one value per restart period ({len(periods)}), "
                              "or none (all 1.0)")
        if recipe.by_epoch and sum(periods) < recipe.max_epochs:
            raise RecipeError(f"recipe key 'restart_periods' covers {sum(periods)} epochs but 'max_epochs' is "
                              f"{recipe.max_epochs}; lengthen the last period or add one")
    if recipe.lr_policy == "one-cycle" and recipe.warmup != "none":
        raise RecipeError("lr_policy 'one-cycle' rises from lr / one_cycle_div_factor by itself: set warmup: none")
    if recipe.warmup != "none" and recipe.warmup_epochs == 0 and recipe.warmup_iters == 0:
        raise RecipeError(f"warmup '{recipe.warmup}' needs 'warmup_epochs' > 0 or 'warmup_iters' > 0 "
                          "(or set warmup: none)")
    if recipe.warmup_iters == 0 and recipe.warmup_epochs > recipe.max_epochs:
        raise RecipeError(f"'warmup_epochs' ({recipe.warmup_epochs}) exceeds 'max_epochs' ({recipe.max_epochs})")
    if recipe.momentum_policy != "none" and recipe.optimizer == "sgd" and recipe.momentum == 0:
        raise RecipeError(f"momentum_policy '{recipe.momentum_policy}' scales sgd's 'momentum', which is 0; "
                          "set momentum (e.g. 0.9) or momentum_policy: none")
    if recipe.momentum_policy == "cyclic" and len(recipe.momentum_target_ratio) != 2:
        raise RecipeError("recipe key 'momentum_target_ratio' needs 2 values [lowest, end], "
                          "e.g. --momentum_target_ratio 0.85 1.0")
