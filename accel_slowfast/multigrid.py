"""Multigrid training (Wu et al. 2020, PySlowFast's ``MULTIGRID``): the shape of every epoch, as plain data.

    multigrid_long_cycle: true      # (clip_len, crop_size) change per epoch, batch and lr scale with them
    multigrid_short_cycle: true     # the crop changes per iteration, the batch with it

A shape's batch keeps each iteration's work (clips x frames x pixels) about that of the base
shape: ``batch_size x round(T S² / (t s²))`` clips of ``t`` frames at ``s``² pixels.

Long cycle: within each LR stage of ``lr_steps`` (``[0, m1)``, ``[m1, m2)``, ...) the run trains
at ``LONG_CYCLE_FACTORS`` of ``(clip_len, crop_size)`` in turn, each for the same number of
iterations; fewer frames are taken ``clip_len / t`` times further apart, so a clip spans the same
time. The LR is ``lr x lr_gamma**k x`` the batch factor (the linear scaling rule; PySlowFast
scales by the long cycle's factor only, not the short cycle's). After the last milestone the
run fine-tunes at the base shape: its first half at the last stage's LR, the second at one more
``lr_gamma``. The epochs are PySlowFast's ``get_long_cycle_schedule``: each shape gets epochs in
proportion to its batch factor, the fine-tuning the same saving of iterations as the rest, all
scaled to ``max_epochs``. PySlowFast's ``EPOCH_FACTOR`` (1.5) is folded into the recipe:
``max_epochs`` and ``lr_steps`` are the epochs this run trains (its 239 epochs with steps 94, 154,
196 are ``max_epochs: 358``, ``lr_steps: [141, 231, 294]``).

Short cycle: iteration ``i`` of an epoch takes the ``i % 3``-th of three crops, ``SHORT_CYCLE_FACTORS``
of ``crop_size`` and then the long cycle's own crop ``s``, with the batch times ``round((s / side)²)``
(PySlowFast's ``ShortCycleBatchSampler``). The factors are PySlowFast's defaults, which its
configs never change, so they are constants here rather than recipe keys.

Evaluation, precise BN and the multi-view test always use the base shape. This module imports
no torch: ``Recipe.validate`` calls ``check_recipe``.
"""

from dataclasses import dataclass
from typing import Any

from accel_slowfast.errors import RecipeError
from accel_slowfast.models.presets import PRESETS

LONG_CYCLE_FACTORS = ((0.25, 0.5**0.5), (0.5, 0.5**0.5), (0.5, 1.0), (1.0, 1.0))  # (frames, side) of the base
SHORT_CYCLE_FACTORS = (0.5, 0.5**0.5)  # side of the base crop; the third iteration takes the long cycle's


@dataclass(frozen=True)
class Shape:
    """One iteration's batch: ``batch_size`` clips of ``clip_len`` frames, ``frame_interval`` apart, ``crop_size``²."""

    batch_size: int
    clip_len: int
    frame_interval: int
    crop_size: int


@dataclass(frozen=True)
class Stage:
    """A long-cycle stage: epochs up to ``end_epoch`` (exclusive) at ``clip_len`` x ``crop_size``²,
    ``batch_factor`` x the base batch, after ``lr_stage`` LR decays."""

    end_epoch: int
    lr_stage: int
    clip_len: int
    crop_size: int
    batch_factor: int


def _batch_factor(base_size: float, clip_len: float, crop_size: float) -> int:
    return int(round(base_size / (clip_len * crop_size**2)))


def long_cycle_stages(lr_steps: list[int], max_epochs: int, clip_len: int, crop_size: int,
                      short_cycle: bool) -> list[Stage]:
    """The long cycle's stages, in order; stages that round to no epoch are left out."""
    base = clip_len * crop_size**2
    shapes, mean_factors = [], []  # per LONG_CYCLE_FACTORS entry: (t, s, factor), the mean factor with short cycles
    for t_factor, s_factor in LONG_CYCLE_FACTORS:
        t, s = int(round(clip_len * t_factor)), int(round(crop_size * s_factor))
        sides = [crop_size * f for f in SHORT_CYCLE_FACTORS] + [s] if short_cycle else [s]
        shapes.append((t, s, _batch_factor(base, t, s)))
        mean_factors.append(sum(_batch_factor(base, t, side) for side in sides) / len(sides))
    bounds = [0, *lr_steps]
    planned, iterations = [], 0.0  # (lr stage, t, s, factor, epochs); iterations in base-shape epochs
    for lr_stage in range(len(lr_steps)):
        span = bounds[lr_stage + 1] - bounds[lr_stage]
        for (t, s, factor), mean in zip(shapes, mean_factors, strict=True):
            epochs = span * mean / sum(mean_factors)  # the same iterations for every shape
            iterations += epochs / mean
            planned.append((lr_stage, t, s, factor, epochs))
    saving = lr_steps[-1] / iterations  # base-shape iterations per multigrid iteration
    finetune = (max_epochs - lr_steps[-1]) / saving * mean_factors[-1]
    scale = max_epochs / (sum(p[-1] for p in planned) + finetune)
    stages, done = [], 0.0
    for lr_stage, t, s, factor, epochs in planned:
        done += epochs * scale
        stages.append(Stage(int(round(done)), lr_stage, t, s, factor))
    start = stages[-1].end_epoch
    stages.append(Stage((start + max_epochs) // 2, len(lr_steps) - 1, clip_len, crop_size, 1))
    stages.append(Stage(max_epochs, len(lr_steps), clip_len, crop_size, 1))
    kept: list[Stage] = []
    for stage in stages:
        if stage.end_epoch > (kept[-1].end_epoch if kept else 0):
            kept.append(stage)
    return kept


class MultigridSchedule:
    """The recipe's multigrid schedule: ``shapes(epoch)`` and ``lr_factor(epoch)``, from the recipe alone.
    A run builds it once (``engine/training.py``), for its loader, its LR and its log."""

    def __init__(self, recipe: Any):
        self.long_cycle, self.short_cycle = recipe.multigrid_long_cycle, recipe.multigrid_short_cycle
        self.batch_size, self.clip_len = recipe.batch_size, recipe.clip_len
        self.frame_interval, self.crop_size, self.lr_gamma = recipe.frame_interval, recipe.crop_size, recipe.lr_gamma
        self.stages = long_cycle_stages(recipe.lr_steps, recipe.max_epochs, recipe.clip_len, recipe.crop_size,
                                        recipe.multigrid_short_cycle) if self.long_cycle else []

    def stage(self, epoch: int) -> Stage:
        """The long-cycle stage of ``epoch`` (0-based); the base shape without a long cycle."""
        for stage in self.stages:
            if epoch < stage.end_epoch:
                return stage
        return Stage(epoch + 1, 0, self.clip_len, self.crop_size, 1)

    def shapes(self, epoch: int) -> list[Shape]:
        """The shapes iterations of ``epoch`` cycle through (one, or three with the short cycle)."""
        stage = self.stage(epoch)
        batch, interval = self.batch_size * stage.batch_factor, self.frame_interval * (self.clip_len // stage.clip_len)
        sides = [int(round(self.crop_size * f)) for f in SHORT_CYCLE_FACTORS] if self.short_cycle else []
        return [Shape(batch * int(round((stage.crop_size / side) ** 2)), stage.clip_len, interval, side)
                for side in sides] + [Shape(batch, stage.clip_len, interval, stage.crop_size)]

    def lr_factor(self, epoch: int) -> float:
        """The long cycle's LR of ``epoch`` relative to ``lr``: ``lr_gamma**k x`` the batch factor."""
        stage = self.stage(epoch)
        return self.lr_gamma**stage.lr_stage * stage.batch_factor

    def table(self) -> str:
        """One line per long-cycle stage, for the start-up log."""
        lines, start = ["epochs     lr x    shapes (batch x frames x crop²)"], 0
        for stage in self.stages or [self.stage(0)]:
            shapes = ", ".join(f"{s.batch_size}x{s.clip_len}x{s.crop_size}²" for s in self.shapes(start))
            end = stage.end_epoch if self.stages else "end"
            lines.append(f"{start + 1:>3}-{end:<5} {self.lr_factor(start):<7.4g} {shapes}")
            start = stage.end_epoch
        return "\n".join(lines)


def check_recipe(recipe: Any) -> None:
    """The multigrid keys against the rest of the recipe and its model preset; ``RecipeError`` naming the key
    and the fix."""
    if not recipe.multigrid:
        return
    key = "multigrid_long_cycle" if recipe.multigrid_long_cycle else "multigrid_short_cycle"
    if recipe.gradient_accumulation_steps != 1:
        raise RecipeError(f"recipe key '{key}' scales the batch itself, so micro-batches would differ in size: set "
                          "gradient_accumulation_steps: 1")
    if recipe.warmup != "none" and recipe.warmup_iters:
        raise RecipeError(f"recipe key '{key}' changes the iterations per epoch: warm up by epochs "
                          "(warmup_epochs) and set warmup_iters: 0")
    if not recipe.multigrid_long_cycle:
        return
    if recipe.lr_policy != "step" or not recipe.lr_steps or not recipe.by_epoch:
        raise RecipeError("recipe key 'multigrid_long_cycle' repeats within each LR stage: it needs lr_policy: step "
                          "with lr_steps (epochs) and by_epoch: true")
    if recipe.lr_steps[-1] >= recipe.max_epochs:
        raise RecipeError(f"multigrid_long_cycle fine-tunes after the last of 'lr_steps' ({recipe.lr_steps[-1]}), "
                          f"which must be below max_epochs ({recipe.max_epochs})")
    alpha = PRESETS[recipe.model].alpha  # SlowFast's slow pathway: every alpha-th frame (one-pathway presets: 1)
    for t_factor, _ in LONG_CYCLE_FACTORS:
        frames = int(round(recipe.clip_len * t_factor))
        if frames % alpha or recipe.clip_len % frames:
            raise RecipeError(f"multigrid_long_cycle trains {t_factor:g} x clip_len = {frames} frames, which must be a "
                              f"multiple of the model's alpha ({alpha}) and divide clip_len ({recipe.clip_len}); try "
                              f"clip_len={4 * alpha}")
