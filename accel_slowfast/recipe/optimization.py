"""The recipe's optimisation keys: the optimizer and its step (``OptimizationArgs``), and how
the run unfolds over epochs: phases, LR and momentum schedules, warmup, multigrid
(``ScheduleArgs``). ``Recipe`` inherits both, so ``--lr=0.1`` and ``recipe.lr`` stay flat.
"""

from dataclasses import dataclass
from typing import Literal, NamedTuple

from accel_slowfast.errors import RecipeError
from accel_slowfast.recipe.fields import Section
from accel_slowfast.recipe.fields import recipe_field as _f  # short: the fields below use it on every line
from accel_slowfast.schedule_formulas import (
    ANNEAL_STRATEGIES,
    LR_POLICIES,
    MOMENTUM_POLICIES,
    WARMUPS,
    check_schedule_keys,
)

# The optimizer steps float32 weights under every mixed_precision (autocast keeps them float32), so a
# learning rate must be a float32 number: 1e300 would overflow at the first step.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass
class OptimizationArgs(Section):
    GROUP = "optimization"

    batch_size: int = _f(16, "Clips per device per iteration (with num_repeats: batch_size / num_repeats videos, "
                             "num_repeats clips of each).", min=1)
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.", min=1)
    optimizer: Literal["sgd", "adamw"] = _f("adamw", "Optimizer (the seed uses sgd).")
    lr: float = _f(4.0e-3, "Learning rate (for base_batch_size clips per step when that is set); one-cycle: its "
                           "peak.", min=0, max=FLOAT32_MAX)
    base_batch_size: int = _f(0, "If > 0, scale lr by (processes x batch_size x accumulation) / "
                                 "base_batch_size.", min=0)
    momentum: float = _f(0.9, "sgd: momentum (the start of momentum_policy).", min=0, max=1)
    weight_decay: float = _f(1.0e-4, "Weight decay (applied to every parameter, as the seed does).", min=0)
    grad_clip: float = _f(40.0, "Max L2 norm of the gradients; 0 disables clipping.", min=0)
    skip_nonfinite_loss: bool = _f(False, "Skip the optimizer step on a NaN/inf loss instead of stopping the "
                                          "run.")
    ema: bool = _f(False, "Keep an exponential moving average of the weights (mmcv's EMAHook): evaluation, the best "
                          "checkpoint, epoch checkpoints and the final model use it.")
    ema_momentum: float = _f(2.0e-4, "ema: weight m of the new weights per update, ema = (1 - m) * ema + m * "
                                     "weights.", above=0, below=1, hint="mmcv's is 2.0e-4")
    ema_interval: int = _f(1, "ema: update every this many iterations (with momentum ema_momentum ** "
                              "ema_interval).", min=1)
    ema_warm_up: int = _f(100, "ema: the momentum at iteration i is at most (1 + i) / (ema_warm_up + i).",
                          min=1)


class Phase(NamedTuple):
    """One entry of mmcv's ``workflow``: ``mode`` (train or val) for ``epochs`` epochs."""

    mode: str
    epochs: int


@dataclass
class ScheduleArgs(Section):
    GROUP = "schedule"

    max_epochs: int = _f(10, "Training epochs.", min=1)
    workflow: list[str] = _f(["train:1"], "mmcv's workflow as mode:epochs, e.g. train:2 val:1 (val: validation "
                                          "loss).")
    lr_policy: Literal[LR_POLICIES] = _f("cosine", "LR policy (mmcv's, see accel_slowfast/schedule_formulas.py).")
    by_epoch: bool = _f(True, "Update the regular LR and momentum once per epoch (mmcv's by_epoch) instead of every "
                              "iteration; one-cycle and cyclic momentum are always per iteration.")
    lr_steps: list[int] = _f([], "step: increasing milestones (epochs when by_epoch, else iterations).")
    lr_step_every: int = _f(0, "step: decay every this many epochs (iterations if not by_epoch) instead of "
                               "lr_steps.", min=0)
    lr_gamma: float = _f(0.1, "step: LR factor per decay; exp: LR factor per epoch/iteration; inv: its gamma.",
                         above=0)
    lr_power: float = _f(1.0, "poly, inv: the exponent.", above=0)
    min_lr: float = _f(0.0, "cosine, flat-cosine, cosine-restart, poly: final LR; step: LR floor.", min=0,
                       max=FLOAT32_MAX)
    min_lr_ratio: float = _f(0.0, "cosine, flat-cosine, cosine-restart: if > 0, final LR = lr x min_lr_ratio "
                                  "(instead of min_lr).", min=0)
    flat_cosine_start: float = _f(0.75, "flat-cosine: fraction of training at constant lr before the cosine "
                                        "starts.", min=0, below=1)
    restart_periods: list[int] = _f([], "cosine-restart: length of each cosine cycle (epochs, or iterations if not "
                                        "by_epoch); together at least the whole run.")
    restart_weights: list[float] = _f([], "cosine-restart: peak of each cycle as a fraction of lr (empty: all "
                                          "1.0).")
    one_cycle_pct_start: float = _f(0.3, "one-cycle: part of the cycle rising from lr / div_factor to lr (its "
                                         "peak).", min=0, max=1)
    one_cycle_anneal: Literal[ANNEAL_STRATEGIES] = _f("cos", "one-cycle: annealing shape.")
    one_cycle_div_factor: float = _f(25.0, "one-cycle: the cycle starts at lr / one_cycle_div_factor.", above=0)
    one_cycle_final_div_factor: float = _f(1.0e4, "one-cycle: the cycle ends at its start LR / this.", above=0)
    one_cycle_three_phase: bool = _f(False, "one-cycle: fall back to the start LR, then anneal in a third "
                                            "phase.")
    one_cycle_total_steps: int = _f(0, "one-cycle: iterations of the cycle; 0 = the run's (never fewer).", min=0)
    warmup: Literal[WARMUPS] = _f("linear", "Warmup (one-cycle needs none: it has its own rise).")
    warmup_epochs: int = _f(1, "Warmup length in epochs (applied per iteration); ignored when warmup_iters > 0.",
                            min=0)
    warmup_iters: int = _f(0, "Warmup length in iterations (mmcv's warmup_by_epoch=False); if > 0, replaces "
                              "warmup_epochs.", min=0)
    warmup_ratio: float = _f(0.1, "LR factor at the first warmup iteration.", above=0, max=1)
    momentum_policy: Literal[MOMENTUM_POLICIES] = _f("none", "Momentum schedule (mmcv's): sets sgd's momentum or "
                                                             "adamw's beta1, from its initial value.")
    momentum_steps: list[int] = _f([], "momentum step: increasing milestones (in by_epoch's unit).")
    momentum_step_every: int = _f(0, "momentum step: decay every this many epochs/iterations, instead of steps.",
                                  min=0)
    momentum_gamma: float = _f(0.5, "momentum step: momentum factor per decay.", above=0)
    min_momentum: float = _f(0.0, "momentum step: floor; momentum cosine: final momentum.", min=0)
    min_momentum_ratio: float = _f(0.0, "momentum cosine: if > 0, final momentum = initial x this (instead of "
                                        "min_momentum).", min=0)
    momentum_target_ratio: list[float] = _f([0.85 / 0.95, 1.0], "momentum cyclic: [lowest, end] momentum of each "
                                                                "cycle as fractions of the initial one.")
    momentum_cyclic_times: int = _f(1, "momentum cyclic: cycles over the run.", above=0)
    momentum_step_ratio_up: float = _f(0.4, "momentum cyclic: fraction of each cycle going down to the lowest.",
                                       min=0, below=1)
    multigrid_long_cycle: bool = _f(False, "Multigrid long cycle (PySlowFast's): within each lr_steps stage, train at "
                                           "1/4-1 of clip_len and 1/sqrt2-1 of crop_size with the batch and lr scaled "
                                           "up to match; needs lr_policy step (accel_slowfast/multigrid.py).")
    multigrid_short_cycle: bool = _f(False, "Multigrid short cycle (PySlowFast's): iterations cycle through crops of "
                                            "1/2 and 1/sqrt2 x crop_size and the long cycle's own, the batch scaled "
                                            "up to match (4x, 2x, 1x at the base crop).")

    @property
    def phases(self) -> list[Phase]:
        """``workflow`` as the runner takes it, ``[Phase("train", 2), Phase("val", 1)]``.

        Raises:
            RecipeError: a phase that is not ``train:N`` or ``val:N`` (N >= 1), or no train phase.
        """
        phases = []
        for phase in self.workflow:
            mode, _, epochs = phase.partition(":")
            if mode not in ("train", "val") or not epochs.isdigit() or int(epochs) < 1:
                raise RecipeError(f"recipe key 'workflow' has {phase!r}; write mode:epochs with mode train or val, "
                                  "e.g. --workflow train:2 val:1")
            phases.append(Phase(mode, int(epochs)))
        if not any(phase.mode == "train" for phase in phases):
            raise RecipeError("recipe key 'workflow' needs a train phase, e.g. --workflow train:1")
        return phases

    @property
    def multigrid(self) -> bool:
        """Whether the run trains with a multigrid cycle (long, short or both; ``accel_slowfast/multigrid.py``)."""
        return self.multigrid_long_cycle or self.multigrid_short_cycle

    def validate(self) -> None:
        check_schedule_keys(self)
        self.phases  # noqa: B018 - parsing it is the check
