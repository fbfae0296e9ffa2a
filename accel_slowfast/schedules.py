"""Learning-rate formulas of mmcv 1.x's ``LrUpdaterHook`` family, as pure functions.

The hook in ``hooks.py`` calls these once per iteration and writes the result into the
optimizer, so every process computes the same value from ``(epoch, iter)`` alone: nothing is
"stepped", and resuming needs no scheduler state.

Worked example (the seed recipe, REFERENCE.md §3)::

    >>> lr = regular_lr("cosine", 0.1, progress=1, max_progress=256)
    >>> round(lr * warmup_factor("linear", 100, 3400, 0.1), 9)
    0.012646582
"""

import math

LR_POLICIES = ("cosine", "step", "fixed")
WARMUPS = ("none", "constant", "linear", "exp")


def annealing_cos(start: float, end: float, factor: float) -> float:
    """Cosine interpolation from ``start`` (factor 0) to ``end`` (factor 1)."""
    return end + 0.5 * (start - end) * (math.cos(math.pi * factor) + 1)


def regular_lr(
    policy: str,
    base_lr: float,
    progress: int,
    max_progress: int,
    *,
    min_lr: float = 0.0,
    steps: tuple[int, ...] = (),
    gamma: float = 0.1,
) -> float:
    """The learning rate before warmup.

    Args:
        policy: ``cosine``, ``step`` or ``fixed``.
        base_lr: the optimizer's initial learning rate.
        progress: the epoch (``by_epoch``) or the global iteration, 0-based.
        max_progress: ``max_epochs`` or ``max_iters``.
        min_lr: the cosine target, and the floor of ``step``.
        steps: ``step`` milestones, in the same unit as ``progress``.
        gamma: ``step`` decay factor per milestone passed.
    """
    if policy == "cosine":
        return annealing_cos(base_lr, min_lr, progress / max_progress)
    if policy == "step":
        passed = sum(1 for milestone in steps if progress >= milestone)
        return max(base_lr * gamma**passed, min_lr)
    if policy == "fixed":
        return base_lr
    raise ValueError(f"unknown lr_policy {policy!r}; choose one of {LR_POLICIES}")


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
