"""Hooks of the evaluation: the metrics of each evaluated epoch, the BatchNorm statistics they
are computed with, and early stopping on them.

==================== ============ ============================================================
hook                 priority     does
==================== ============ ============================================================
``PreciseBNHook``    BELOW_NORMAL BatchNorm statistics of N training batches, before evaluating
``EvalHook``         LOW          top-1/top-5/mean-class accuracy every ``eval_interval`` epochs
                                  and after the last one; keeps the best checkpoint
``EarlyStoppingHook`` LOW         (registered after ``EvalHook``) ends the run when a metric
                                  stops improving
==================== ============ ============================================================

In ``after_train_epoch``: EMA swap-in (NORMAL) -> precise BN -> evaluation -> early stopping ->
the loggers (VERY_LOW) -> the checkpoint (LOWEST). ``EvalHook.last`` holds the latest
``Evaluation``; the hooks that use it (early stopping, ``LoggerHook``, ``TrackerHook``) are given
the ``EvalHook`` when they are built (``hooks.build_hooks``).
"""

import functools
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch.nn.modules.batchnorm import _BatchNorm

from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE, CHECKPOINT_DIR, best_checkpoint_name
from accel_slowfast.checkpointing.writer import save_best
from accel_slowfast.evaluation.metrics import VideoScores, score_videos

EARLY_STOP_STATE = "early_stop"  # key in runner.meta (saved with every checkpoint)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: its epoch (1-based), its ``metrics`` (top1_acc, top5_acc,
    mean_class_accuracy, num_videos, num_failed), the per-video ``scores`` behind them, and the
    best checkpoint of the run so far (this epoch's when it improved; None before any)."""

    epoch: int
    metrics: dict[str, float]
    scores: VideoScores
    best_checkpoint: str | None


class EvalHook:
    """Top-1/top-5/mean-class accuracy every ``interval`` epochs and after the last epoch, with
    the number of videos scored (``num_videos``) and not scored (``num_failed``).

    ``last`` is the latest ``Evaluation`` (None before the first): the epoch's, when ``last.epoch``
    is ``runner.epoch + 1`` in ``after_train_epoch``. Keeps the best model (by ``save_best``,
    higher is better) as ``checkpoints/best_<metric>_epoch_<N>.pth`` and its score in
    ``runner.meta`` (saved with the checkpoints; ``best_checkpoint`` is restored from it). Runs on every
    process (scores are gathered); only the main process writes, under a staging name carrying
    ``run_id`` (``writer.save_best``). ``between_batches(runner)``, if given, is called on every
    process after each batch; it may end the evaluation by raising
    (``InterruptHook._between_eval_batches``: a stop signal).
    """

    priority = "LOW"

    def __init__(self, data_loader, interval: int = 1, save_best: str = "top1_acc", run_id: str = "",
                 between_batches: Callable[[Any], None] | None = None):
        self.data_loader, self.interval, self.save_best, self.run_id = data_loader, interval, save_best, run_id
        self._between_batches = between_batches
        self.last: Evaluation | None = None
        self.best_checkpoint: str | None = None

    def before_run(self, runner) -> None:
        self.best_checkpoint = runner.meta.get("best_ckpt")  # a resumed run's, from its checkpoint

    def after_train_epoch(self, runner) -> None:
        if not runner.epoch_due(self.interval):
            return
        epoch = runner.epoch + 1
        between = functools.partial(self._between_batches, runner) if self._between_batches else None
        results = score_videos(runner.model, self.data_loader, runner.accelerator, between_batches=between)
        metrics = results.metrics()
        if metrics["num_failed"]:
            runner.logger.warning("Epoch %d: %d validation videos could not be decoded and were not scored "
                                  "(listed in %s)", epoch, metrics["num_failed"], BAD_VIDEOS_FILE)
        runner.meta["last_eval"] = {"epoch": epoch, **metrics}  # for the run's summary
        score = metrics[self.save_best]
        if score > runner.meta.get("best_score", float("-inf")):
            self._save_best(runner, epoch, score)
            self.best_checkpoint = runner.meta["best_ckpt"]
        self.last = Evaluation(epoch, metrics, results, self.best_checkpoint)

    def _save_best(self, runner, epoch: int, score: float) -> None:
        """Write the best weights through the checkpoints' writer (``writer.save_best``), replacing
        the previous best file."""
        accelerator = runner.accelerator
        path = runner.work_dir / CHECKPOINT_DIR / best_checkpoint_name(self.save_best, epoch)
        state = accelerator.get_state_dict(runner.model)  # every process: gathers sharded weights
        save_best(runner, path, {"state_dict": state, "meta": {"epoch": epoch, self.save_best: score}}, self.run_id,
                  replaces=runner.meta.get("best_ckpt"))
        if accelerator.is_main_process:
            runner.logger.info("Epoch %d: best %s %.4f, saved %s", epoch, self.save_best, score, path)
        runner.meta.update(best_metric=self.save_best, best_score=score, best_epoch=epoch, best_ckpt=str(path))
        accelerator.wait_for_everyone()


def just_evaluated(evaluation: EvalHook, runner) -> Evaluation | None:
    """The ``Evaluation`` of the train epoch that just ended (in ``after_train_epoch``, after
    ``evaluation`` ran), or None for an epoch without one."""
    last = evaluation.last
    return last if last is not None and last.epoch == runner.epoch + 1 else None


def forward_batch(model: torch.nn.Module, batch: dict[str, Any]) -> Any:
    """The forward ``recompute_bn_stats`` runs by default: ``model(batch["video"])``."""
    return model(batch["video"])


@torch.no_grad()
def recompute_bn_stats(
    model: torch.nn.Module,
    batches: Iterable,
    accelerator: Accelerator,
    forward: Callable[[torch.nn.Module, Any], Any] = forward_batch,
) -> int:
    """PySlowFast's precise BN: set the running statistics of every BatchNorm layer in training
    mode to their average over ``batches``, then average them over processes.

    The forward passes run in training mode with ``momentum=None`` (PyTorch's cumulative average),
    so after N batches ``running_mean`` is the mean of the N batch means and ``running_var`` the
    mean of the N (unbiased) batch variances. Frozen layers (eval mode) are left alone. Pass the
    unwrapped model: DDP would broadcast rank 0's buffers before every forward. Every process
    must call this (one all-reduce). Returns the number of batches used.
    """
    was_training = model.training
    model.train()
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone(), m.running_mean.clone(), m.running_var.clone())
             for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    count = 0
    for batch in batches:
        forward(model, send_to_device(batch, accelerator.device))
        count += 1
    stats = [t for m in layers for t in (m.running_mean, m.running_var)]
    if stats and count:
        flat = accelerator.reduce(torch.cat([t.flatten() for t in stats]), reduction="mean")
        for tensor, value in zip(stats, flat.split([t.numel() for t in stats]), strict=True):
            tensor.copy_(value.view_as(tensor))
    for layer, (momentum, tracked, mean, var) in zip(layers, saved, strict=True):
        layer.momentum = momentum
        layer.num_batches_tracked.copy_(tracked)
        if not count:  # nothing seen: keep the old statistics
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
    model.train(was_training)
    return count


class PreciseBNHook:
    """Precise BN before each evaluation (every ``interval`` epochs and after the last one, as
    ``EvalHook``), on the first ``num_batches`` batches of ``data_loader`` (each process its own).

    Runs after ``EMAHook``'s swap, so the statistics belong to the weights being evaluated, and
    before ``EvalHook``. It reads the loader underneath Accelerate's wrapper: a partial pass
    through the prepared loader would leave it registered in Accelerate's gradient state.
    """

    priority = "BELOW_NORMAL"

    def __init__(self, data_loader: Iterable, num_batches: int = 200, interval: int = 1,
                 forward: Callable[[torch.nn.Module, Any], Any] = forward_batch):
        self.data_loader, self.num_batches, self.interval, self.forward = data_loader, num_batches, interval, forward

    def after_train_epoch(self, runner) -> None:
        if not runner.epoch_due(self.interval):  # the epochs EvalHook evaluates
            return
        source = getattr(self.data_loader, "base_dataloader", self.data_loader)
        model = runner.accelerator.unwrap_model(runner.model)
        used = recompute_bn_stats(model, itertools.islice(source, self.num_batches), runner.accelerator, self.forward)
        if used < self.num_batches:
            runner.logger.warning("Precise BN: %d batches asked, the loader has %d", self.num_batches, used)


class EarlyStoppingHook:
    """Stop the run when ``metric`` has not improved for ``patience`` evaluations.

    Reads the metrics of ``evaluation`` (the run's ``EvalHook``; epochs without an evaluation are
    skipped) and sets ``runner.stop_training``: the runner finishes this epoch's
    hooks (logger, checkpoint) and ends. Its state lives in ``runner.meta["early_stop"]``, so it is
    saved with every checkpoint; a resumed run that had already stopped ends at once.
    """

    priority = "LOW"  # registered after EvalHook, which evaluates at the same priority

    def __init__(self, metric: str, patience: int, rule: str = "greater", *, evaluation: EvalHook):
        if rule not in ("greater", "less") or patience < 1:
            raise ValueError(f"EarlyStoppingHook needs rule 'greater' or 'less' and patience >= 1, got {rule!r}, "
                             f"{patience}")
        self.metric, self.patience, self.rule, self.evaluation = metric, patience, rule, evaluation

    def before_run(self, runner) -> None:
        state = runner.meta.get(EARLY_STOP_STATE)
        if state and state["stopped"]:
            runner.logger.info("Early stopping: this run already stopped at epoch %d", state["stopped_epoch"])
            runner.stop_training = True

    def after_train_epoch(self, runner) -> None:
        evaluation = just_evaluated(self.evaluation, runner)
        if evaluation is None:
            return
        if self.metric not in evaluation.metrics:
            raise KeyError(f"early stopping monitors {self.metric!r}, but the evaluation gave "
                           f"{sorted(evaluation.metrics)}")
        epoch, value = runner.epoch + 1, float(evaluation.metrics[self.metric])
        state = runner.meta.setdefault(EARLY_STOP_STATE, {"best": None, "best_epoch": 0, "bad_evaluations": 0,
                                                          "stopped": False, "stopped_epoch": 0})
        best = state["best"]
        if best is None or (value > best if self.rule == "greater" else value < best):
            state.update(best=value, best_epoch=epoch, bad_evaluations=0)
            return
        state["bad_evaluations"] += 1
        if state["bad_evaluations"] >= self.patience:
            state.update(stopped=True, stopped_epoch=epoch)
            runner.stop_training = True
            runner.logger.info("Early stopping after epoch %d: %s has not improved on %.4f (epoch %d) for %d "
                               "evaluations", epoch, self.metric, best, state["best_epoch"], self.patience)
