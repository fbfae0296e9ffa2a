"""The built-in hooks, grouped by concern, and ``build_hooks``: the ones a recipe switches on, in order.

A hook is an object whose methods are named after runner events (``events.EVENTS``) and take
the runner; hooks do side effects only: the LR, momentum, mixing, backward and optimizer step are
the runner's train iteration (``Runner.train_epoch``), which runs the step before every
``after_train_iter`` hook. Lower priorities run first (mmcv's names); among equal ones, the order
of registration, which is the order below. The run's log prints the result per event
(``Runner.hook_info``).

============================ ============ ==================================================
hook (module)                priority     does
============================ ============ ==================================================
``SamplerSeedHook`` (sampler) NORMAL      the loader's epoch: shuffling and augmentation
``EMAHook`` (ema)            NORMAL       ``ema``: weight average, swapped in for evaluation
``EmptyCacheHook`` (device)  NORMAL       ``empty_cache``: ``torch.cuda.empty_cache()``
``PreciseBNHook`` (eval.)    BELOW_NORMAL ``precise_bn_batches``: BN statistics before evaluating
``IterTimerHook`` (logs)     LOW          ``time`` and ``data_time`` of each iteration
``EvalHook`` (eval.)         LOW          metrics every ``eval_interval`` epochs and at the end
``EarlyStoppingHook`` (eval.) LOW         ``early_stop_metric``: ends the run when it stalls
``LoggerHook`` (logs)        VERY_LOW     text log, ``metrics.jsonl``, trackers, bar, summary
``TrackerHook`` (trackers)   VERY_LOW     ``report_to``: confusion matrix, clips, artifact
``ProfilerHook`` (device)    LOWEST       ``profile_iters``: a ``torch.profiler`` trace
``CheckpointHook`` (ckpt.)   LOWEST       resumable state every ``checkpoint_interval`` epochs
``InterruptHook`` (ckpt.)    LOWEST       a stop signal: checkpoint after the step, then stop
============================ ============ ==================================================

``EarlyStoppingHook``, ``LoggerHook`` and ``TrackerHook`` are given the ``EvalHook``: they read
its ``Evaluation`` (metrics, per-video scores, best checkpoint).
"""

from typing import Any

from accel_slowfast.checkpointing.hooks import CheckpointHook, InterruptHook
from accel_slowfast.checkpointing.writer import CheckpointWriter
from accel_slowfast.engine.hooks.device import EmptyCacheHook, ProfilerHook
from accel_slowfast.engine.hooks.ema import EMAHook
from accel_slowfast.engine.hooks.logs import IterTimerHook, LoggerHook, summary_lines
from accel_slowfast.engine.hooks.sampler import SamplerSeedHook, set_loader_epoch
from accel_slowfast.engine.trackers import TrackerHook
from accel_slowfast.evaluation.hooks import EarlyStoppingHook, EvalHook, PreciseBNHook, recompute_bn_stats

__all__ = ["CheckpointHook", "CheckpointWriter", "EMAHook", "EarlyStoppingHook", "EmptyCacheHook", "EvalHook",
           "InterruptHook", "IterTimerHook", "LoggerHook", "PreciseBNHook", "ProfilerHook", "SamplerSeedHook",
           "TrackerHook", "build_hooks", "recompute_bn_stats", "set_loader_epoch", "state_objects", "summary_lines"]


def build_hooks(recipe, *, model, train_loader, val_loader, val_set, interrupts, run_id: str = "") -> list[Any]:
    """The hooks ``recipe`` asks for, in registration order (the table above).

    Args:
        recipe: the resolved ``Recipe``.
        model: the prepared model (``EMAHook`` averages its parameters).
        train_loader, val_loader: the prepared loaders (precise BN reads training batches, at the
            base shape: a multigrid run passes its base-shape loader).
        val_set: the validation ``ClipDataset`` (the trackers show its clips).
        interrupts: the active ``interrupts.Interrupts``.
        run_id: the run's id (``checkpointing/lock.py``): in its checkpoints' ``meta.json`` and staging names.

    Hooks with a ``state_dict`` (``EMAHook``) are saved with every checkpoint after the runner's
    state; ``state_objects`` lists them in that order, for ``resume.restore``.
    """
    hooks: list[Any] = [SamplerSeedHook()]
    if recipe.ema:
        hooks.append(EMAHook(model, recipe.ema_momentum, recipe.ema_interval, recipe.ema_warm_up))
    if recipe.empty_cache != "none":
        hooks.append(EmptyCacheHook(after_iter=recipe.empty_cache == "iter"))
    if recipe.precise_bn_batches:
        hooks.append(PreciseBNHook(train_loader, recipe.precise_bn_batches, interval=recipe.eval_interval))
    # A stop signal ends an evaluation at its next batch; the InterruptHook that acts on it is built
    # last (its writer saves every hook's state), so the evaluation looks it up when it runs.
    evaluation = EvalHook(val_loader, interval=recipe.eval_interval, run_id=run_id,
                          between_batches=lambda runner: interrupt._between_eval_batches(runner))
    hooks += [IterTimerHook(), evaluation]
    if recipe.early_stop_metric:
        hooks.append(EarlyStoppingHook(recipe.early_stop_metric, recipe.early_stop_patience, recipe.early_stop_rule,
                                       evaluation=evaluation))
    hooks.append(LoggerHook(recipe.log_interval, use_trackers=recipe.report_to != "none", evaluation=evaluation))
    if recipe.trackers:
        hooks.append(TrackerHook(val_set, evaluation=evaluation, num_clips=recipe.log_val_clips,
                                 log_checkpoint=recipe.log_checkpoint))
    if recipe.profile_iters:
        wait, warmup, active = [0, 0, *recipe.profile_iters][-3:]
        hooks.append(ProfilerHook(wait, warmup, active))
    writer = CheckpointWriter(recipe.to_dict(), recipe.max_keep_ckpts, objects=state_objects(hooks), run_id=run_id)
    interrupt = InterruptHook(interrupts, writer)
    hooks += [CheckpointHook(writer, recipe.checkpoint_interval, recipe.checkpoint_interval_iters), interrupt]
    return hooks


def state_objects(hooks: list[Any]) -> list[Any]:
    """The hooks a checkpoint holds besides Accelerate's state and the runner's (``custom_checkpoint_0.pkl``),
    in its order: each hook with a ``state_dict`` (``custom_checkpoint_1.pkl``, ``_2.pkl``, ...)."""
    return [hook for hook in hooks if hasattr(hook, "state_dict")]
