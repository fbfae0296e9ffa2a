"""The recipe: every training setting, its default, its meaning and its allowed values, in sections.

Each section is a dataclass of its keys (``data.py``: data, augmentation; ``optimization.py``:
optimization, schedule; ``run.py``: model, evaluation, checkpoints, logging, runtime). ``Recipe``
inherits them all, so a YAML recipe, the command line and Python stay flat, while a builder takes
the one section it reads::

    recipe = Recipe(max_epochs=3, lr=0.01)                  # recipe.lr, recipe.to_dict(): flat
    train_index, val_index = build_indexes(recipe.data_args, accelerator)   # a DataArgs: dataset, lists, ...

Defaults train ``slowfast_tiny`` on the built-in synthetic dataset (a few minutes on 2 CPU
cores). A YAML recipe lists only what differs; ``--key=value`` overrides win over the YAML
(``io.py`` reads both):

    accel-slowfast train recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4
    accel-slowfast train --help                   # every key by section, with its default

Each key carries its own rule (``fields.py``): a ``Literal`` type lists its choices, ``min``/``max``
(inclusive) and ``above``/``below`` (exclusive) bound a number. Building a ``Recipe`` checks every
key against its rule, then each section's combinations, then ``validate``'s between sections;
each fails with one ``RecipeError`` line naming the key and the fix. This package imports no
torch, so ``--help`` and those errors come at once.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from accel_slowfast.errors import RecipeError
from accel_slowfast.models.presets import PRESETS
from accel_slowfast.multigrid import check_recipe as check_multigrid
from accel_slowfast.recipe.data import AugmentationArgs, DataArgs
from accel_slowfast.recipe.fields import Section
from accel_slowfast.recipe.optimization import OptimizationArgs, ScheduleArgs
from accel_slowfast.recipe.run import (
    AVERAGE_CLIPS,
    MODELS,
    CheckpointArgs,
    EvaluationArgs,
    LoggingArgs,
    ModelArgs,
    RuntimeArgs,
)

# The sections in --help's order.
SECTIONS = (RuntimeArgs, ModelArgs, DataArgs, AugmentationArgs, EvaluationArgs, OptimizationArgs, ScheduleArgs,
            CheckpointArgs, LoggingArgs)
__all__ = ["AVERAGE_CLIPS", "MODELS", "SECTIONS", "Recipe", "RecipeError"]

S = TypeVar("S", bound=Section)


class _SectionView(Generic[S]):
    """``recipe.model_args``: a new ``ModelArgs`` of the recipe's values of its keys."""

    def __init__(self, section: type[S]):
        self.section = section

    def __get__(self, recipe: Any, owner: type) -> S:
        if recipe is None:
            return self  # type: ignore[return-value]
        return self.section(**{f.name: getattr(recipe, f.name) for f in dataclasses.fields(self.section)})


@dataclass
class Recipe(*reversed(SECTIONS)):  # (a dataclass takes its bases' fields last base first: SECTIONS' order)
    model_args = _SectionView(ModelArgs)
    data_args = _SectionView(DataArgs)
    augmentation_args = _SectionView(AugmentationArgs)
    optimization_args = _SectionView(OptimizationArgs)
    schedule_args = _SectionView(ScheduleArgs)
    evaluation_args = _SectionView(EvaluationArgs)
    checkpoint_args = _SectionView(CheckpointArgs)
    logging_args = _SectionView(LoggingArgs)
    runtime_args = _SectionView(RuntimeArgs)

    def validate(self) -> None:
        """Each section's checks, then those between sections; raise ``RecipeError`` naming the keys.
        (``Section.__post_init__`` calls it, after checking each key against its rule.)"""
        for section in SECTIONS:
            section.validate(self)
        alpha = PRESETS[self.model].alpha
        if self.clip_len % alpha:
            raise RecipeError(f"recipe key 'clip_len' ({self.clip_len}) must be a multiple of {self.model}'s alpha "
                              f"({alpha}); try clip_len={max(alpha, self.clip_len // alpha * alpha)}")
        if self.test_crop_size > self.short_side:
            raise RecipeError(f"recipe key 'test_crop_size' ({self.test_crop_size}) exceeds 'short_side' "
                              f"({self.short_side})")
        if self.num_repeats > 1 and self.batch_size % self.num_repeats:
            raise RecipeError(f"recipe key 'batch_size' ({self.batch_size}) counts clips, {self.num_repeats} per video "
                              f"(num_repeats): make it a multiple, e.g. --batch_size="
                              f"{max(self.batch_size // self.num_repeats, 1) * self.num_repeats}")
        if self.num_repeats > 1 and self.multigrid:
            raise RecipeError("recipe key 'num_repeats' does not combine with multigrid (its batch size changes every "
                              "few steps); set --num_repeats=1 or turn multigrid_long_cycle/short_cycle off")
        if self.mixing and self.batch_size < 2:
            raise RecipeError("mixup_alpha/cutmix_alpha mix each clip with another of its batch: set batch_size >= 2")
        check_multigrid(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
