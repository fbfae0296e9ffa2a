"""The built-in hooks, grouped by concern, and ``build_hooks``: the ones a recipe switches on, in order.

A hook is an object whose methods are named after runner events (``runner.EVENTS``) and take
the runner. Lower priorities run first (mmcv's names); among equal ones, the order of
registration, which is the order below. The run's log prints the result per event
(``Runner.hook_info``).

============================ ============ ==================================================
hook (module)                priority     does
============================ ============ ==================================================
``LrScheduleHook`` (optim.)  VERY_HIGH    the LR of every param group before each iteration
``MomentumScheduleHook``     HIGH         momentum (SGD) or beta1 (Adam), ``momentum_policy``
``OptimizerHook`` (optim.)   ABOVE_NORMAL backward, gradient clipping, step (accumulation aware)
``SamplerSeedHook`` (misc)   NORMAL       the loader's epoch: shuffling and augmentation
``EMAHook`` (optim.)         NORMAL       ``ema``: weight average, swapped in for evaluation
``EmptyCacheHook`` (misc)    NORMAL       ``empty_cache``: ``torch.cuda.empty_cache()``
``PreciseBNHook`` (eval.)    BELOW_NORMAL ``precise_bn_batches``: BN statistics before evaluating
``IterTimerHook`` (logs)     LOW          ``time`` and ``data_time`` of each iteration
``EvalHook`` (eval.)         LOW          metrics every ``eval_interval`` epochs and at the end
``EarlyStoppingHook`` (eval.) LOW         ``early_stop_metric``: ends the run when it stalls
``BlendingHook`` (blending)  VERY_LOW     MixUp, CutMix, label smoothing: soft targets
``LoggerHook`` (logs)        VERY_LOW     text log, ``metrics.jsonl``, trackers, bar, summary
``TrackerHook`` (trackers)   VERY_LOW     ``report_to``: confusion matrix, clips, artifact
``ProfilerHook`` (misc)      LOWEST       ``profile_iters``: a ``torch.profiler`` trace
``CheckpointHook`` (ckpt.)   LOWEST       resumable state every ``checkpoint_interval`` epochs
``InterruptHook`` (ckpt.)    LOWEST       a stop signal: checkpoint after the step, then stop
============================ ============ ==================================================
"""

from typing import Any

from accel_slowfast.checkpointing.hooks import CheckpointHook, CheckpointWriter, InterruptHook
from accel_slowfast.checkpointing.layout import RunnerProgress
from accel_slowfast.engine.hooks.logs import IterTimerHook, LoggerHook, summary_lines
from accel_slowfast.engine.hooks.misc import EmptyCacheHook, ProfilerHook, SamplerSeedHook, set_loader_epoch
from accel_slowfast.engine.hooks.optimization import (
    EMAHook,
    LrScheduleHook,
    MomentumScheduleHook,
    OptimizerHook,
    build_lr_hook,
    build_momentum_hook,
)
from accel_slowfast.engine.mixing import Blending, BlendingHook
from accel_slowfast.engine.trackers import TrackerHook
from accel_slowfast.evaluation.hooks import EarlyStoppingHook, EvalHook, PreciseBNHook, recompute_bn_stats
from accel_slowfast.multigrid import MultigridSchedule

__all__ = ["CheckpointHook", "CheckpointWriter", "EMAHook", "EarlyStoppingHook", "EmptyCacheHook", "EvalHook",
           "InterruptHook", "IterTimerHook", "LoggerHook", "LrScheduleHook", "MomentumScheduleHook", "OptimizerHook",
           "PreciseBNHook", "ProfilerHook", "SamplerSeedHook", "TrackerHook", "build_hooks", "recompute_bn_stats",
           "set_loader_epoch", "state_objects", "summary_lines"]


def build_hooks(recipe, *, model, train_loader, val_loader, val_set, progress: RunnerProgress,
                interrupts, run_id: str = "", multigrid: MultigridSchedule | None = None) -> list[Any]:
    """The hooks ``recipe`` asks for, in registration order (the table above).

    Args:
        recipe: the resolved ``Recipe``.
        model: the prepared model (``EMAHook`` averages its parameters).
        train_loader, val_loader: the prepared loaders (precise BN reads training batches, at the
            base shape: a multigrid run passes its base-shape loader).
        val_set: the validation ``ClipDataset`` (the trackers show its clips).
        progress: the runner's position, saved with every checkpoint.
        interrupts: the active ``interrupts.Interrupts``.
        run_id: the run's id (``workdir_lock``): in its checkpoints' ``meta.json`` and staging names.
        multigrid: the run's multigrid schedule, if it has one (the LR follows its stages).

    Hooks with a ``state_dict`` (``EMAHook``) are saved with every checkpoint after ``progress``;
    ``state_objects`` lists them in that order, for ``resume.restore``.
    """
    hooks: list[Any] = [build_lr_hook(recipe, multigrid)]
    if recipe.momentum_policy != "none":
        hooks.append(build_momentum_hook(recipe))
    hooks.append(OptimizerHook(recipe.grad_clip, skip_nonfinite=recipe.skip_nonfinite_loss))
    hooks.append(SamplerSeedHook())
    if recipe.ema:
        hooks.append(EMAHook(model, recipe.ema_momentum, recipe.ema_interval, recipe.ema_warm_up))
    if recipe.empty_cache != "none":
        hooks.append(EmptyCacheHook(after_iter=recipe.empty_cache == "iter"))
    if recipe.precise_bn_batches:
        hooks.append(PreciseBNHook(train_loader, recipe.precise_bn_batches, interval=recipe.eval_interval))
    # A stop signal ends an evaluation at its next batch; the InterruptHook that acts on it is built
    # last (its writer saves every hook's state), so the evaluation looks it up when it runs.
    hooks += [IterTimerHook(), EvalHook(val_loader, interval=recipe.eval_interval, run_id=run_id,
                                        between_batches=lambda runner: interrupt._between_eval_batches(runner))]
    if recipe.early_stop_metric:
        hooks.append(EarlyStoppingHook(recipe.early_stop_metric, recipe.early_stop_patience, recipe.early_stop_rule))
    if recipe.soft_targets:
        blending = Blending(num_classes=recipe.num_classes, mixup_alpha=recipe.mixup_alpha,
                            cutmix_alpha=recipe.cutmix_alpha, mix_prob=recipe.mix_prob,
                            switch_prob=recipe.mix_switch_prob, label_smoothing=recipe.label_smoothing)
        hooks.append(BlendingHook(blending, recipe.seed))
    hooks.append(LoggerHook(recipe.log_interval, use_trackers=recipe.report_to != "none"))
    if recipe.trackers:
        hooks.append(TrackerHook(val_set, num_clips=recipe.log_val_clips, log_checkpoint=recipe.log_checkpoint))
    if recipe.profile_iters:
        wait, warmup, active = [0, 0, *recipe.profile_iters][-3:]
        hooks.append(ProfilerHook(wait, warmup, active))
    writer = CheckpointWriter(progress, recipe.to_dict(), recipe.max_keep_ckpts,
                              objects=state_objects(progress, hooks)[1:], run_id=run_id)
    interrupt = InterruptHook(interrupts, writer)
    hooks += [CheckpointHook(writer, recipe.checkpoint_interval, recipe.checkpoint_interval_iters), interrupt]
    return hooks


def state_objects(progress: RunnerProgress, hooks: list[Any]) -> list[Any]:
    """What a checkpoint holds besides Accelerate's state, in its order: ``progress``, then each
    hook with a ``state_dict`` (``custom_checkpoint_0.pkl``, ``_1.pkl``, ...)."""
    return [progress, *(hook for hook in hooks if hasattr(hook, "state_dict"))]
