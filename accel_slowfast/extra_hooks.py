"""Optional hooks, each switched on by recipe keys: EMA weights, precise BatchNorm statistics,
early stopping, emptying the CUDA cache and profiling; plus the SyncBatchNorm conversion.

    accelerate launch train.py --ema --precise_bn_batches=200 --early_stop_metric=top1_acc

==================== ================= ======================================================
hook                 priority          does
==================== ================= ======================================================
``EMAHook``          NORMAL (50)       averages the weights after each optimizer step; swaps
                                       them in after each epoch (evaluation and checkpoints
                                       see them), out before the next
``EmptyCacheHook``   NORMAL (50)       ``torch.cuda.empty_cache()`` after epochs/iterations
``PreciseBNHook``    BELOW_NORMAL (60) BatchNorm statistics averaged over N training batches,
                                       just before each evaluation (of the EMA weights)
``EarlyStoppingHook`` 80               reads EvalHook's metrics from the log buffer and sets
                                       ``runner.stop_training`` when they stop improving
``ProfilerHook``     LOWEST (100)      ``torch.profiler`` over a window of iterations, Chrome
                                       trace in ``<work_dir>/profiler/``
==================== ================= ======================================================

In ``after_train_epoch`` the order is: EMA swap-in (50) -> precise BN (60) -> EvalHook (70) ->
early stopping (80, after EvalHook wrote its metrics, before LoggerHook (90) clears them) ->
CheckpointHook (100).
"""

import itertools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import extract_model_from_parallel, send_to_device
from torch.nn.modules.batchnorm import _BatchNorm

PROFILER_DIR = "profiler"
EARLY_STOP_STATE = "early_stop"  # key in runner.meta (saved with every checkpoint)


class EMAHook:
    """mmcv's ``EMAHook``: an exponential moving average of every parameter.

    After train iteration ``i`` (0-based, global) with ``i % interval == 0``::

        m = min(momentum ** interval, (1 + i) / (warm_up + i))
        ema = (1 - m) * ema + m * param

    As in mmcv, ``after_train_epoch`` swaps the averaged weights into the model, so evaluation, the
    best checkpoint and the epoch checkpoint see them, and ``before_train_epoch`` swaps the trained
    weights back. After the run the model holds the averaged weights. The hook is checkpointable
    (``state_dict``/``load_state_dict``): register it with ``accelerator.register_for_checkpointing``
    before ``load_state``; ``swapped`` records which copy the model holds, so a resumed run continues
    exactly. Only parameters are averaged (BatchNorm statistics are the model's), as in mmcv.
    """

    priority = "NORMAL"  # after OptimizerHook (ABOVE_NORMAL) stepped, before EvalHook (LOW)

    def __init__(self, model: torch.nn.Module, momentum: float = 2.0e-4, interval: int = 1, warm_up: int = 100):
        if not 0 < momentum < 1 or interval < 1 or warm_up < 1:
            raise ValueError(f"EMAHook needs 0 < momentum < 1, interval >= 1, warm_up >= 1; got {momentum}, "
                             f"{interval}, {warm_up}")
        self.momentum, self.interval, self.warm_up = momentum**interval, interval, warm_up
        self.params = dict(extract_model_from_parallel(model).named_parameters())
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        self.swapped = False  # True between after_train_epoch and the next before_train_epoch

    def after_train_iter(self, runner) -> None:
        step = runner.iter
        if step % self.interval:
            return
        momentum = min(self.momentum, (1 + step) / (self.warm_up + step))
        with torch.no_grad():
            for name, param in self.params.items():
                self.shadow[name].mul_(1 - momentum).add_(param.detach(), alpha=momentum)

    def after_train_epoch(self, runner) -> None:
        self._swap()

    def before_train_epoch(self, runner) -> None:
        if self.swapped:
            self._swap()

    @torch.no_grad()
    def _swap(self) -> None:
        for name, param in self.params.items():
            trained = param.detach().clone()
            param.copy_(self.shadow[name])
            self.shadow[name].copy_(trained)
        self.swapped = not self.swapped

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "swapped": self.swapped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("the checkpoint's EMA weights do not match the model's parameters")
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        self.swapped = bool(state["swapped"])


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
        epoch = runner.epoch + 1
        if epoch % self.interval and epoch != runner.max_epochs:
            return
        source = getattr(self.data_loader, "base_dataloader", self.data_loader)
        model = runner.accelerator.unwrap_model(runner.model)
        used = recompute_bn_stats(model, itertools.islice(source, self.num_batches), runner.accelerator, self.forward)
        if used < self.num_batches:
            runner.logger.warning("Precise BN: %d batches asked, the loader has %d", self.num_batches, used)


class EarlyStoppingHook:
    """Stop the run when ``metric`` has not improved for ``patience`` evaluations.

    Reads the metrics ``EvalHook`` left in ``runner.log_buffer.output`` (epochs without an
    evaluation are skipped) and sets ``runner.stop_training``: the runner finishes this epoch's
    hooks (logger, checkpoint) and ends. Its state lives in ``runner.meta["early_stop"]``, so it is
    saved with every checkpoint; a resumed run that had already stopped ends at once.
    """

    priority = 80  # after EvalHook (LOW, 70) wrote the metrics, before LoggerHook (VERY_LOW, 90) clears them

    def __init__(self, metric: str, patience: int, rule: str = "greater"):
        if rule not in ("greater", "less") or patience < 1:
            raise ValueError(f"EarlyStoppingHook needs rule 'greater' or 'less' and patience >= 1, got {rule!r}, "
                             f"{patience}")
        self.metric, self.patience, self.rule = metric, patience, rule

    def before_run(self, runner) -> None:
        state = runner.meta.get(EARLY_STOP_STATE)
        if state and state["stopped"]:
            runner.logger.info("Early stopping: this run already stopped at epoch %d", state["stopped_epoch"])
            runner.stop_training = True

    def after_train_epoch(self, runner) -> None:
        output = runner.log_buffer.output
        if self.metric not in output:
            if output:
                raise KeyError(f"early stopping monitors {self.metric!r}, but the evaluation gave {sorted(output)}")
            return
        epoch, value = runner.epoch + 1, float(output[self.metric])
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


class EmptyCacheHook:
    """mmcv's ``EmptyCacheHook``: ``torch.cuda.empty_cache()`` after every epoch (train and val),
    and also after every iteration with ``after_iter``. Does nothing off CUDA."""

    priority = "NORMAL"

    def __init__(self, after_iter: bool = False):
        self.after_iter = after_iter

    @staticmethod
    def _empty(runner) -> None:
        if runner.accelerator.device.type == "cuda":
            torch.cuda.empty_cache()

    def after_train_epoch(self, runner) -> None:
        self._empty(runner)

    def after_val_epoch(self, runner) -> None:
        self._empty(runner)

    def after_train_iter(self, runner) -> None:
        if self.after_iter:
            self._empty(runner)

    def after_val_iter(self, runner) -> None:
        if self.after_iter:
            self._empty(runner)


class ProfilerHook:
    """``torch.profiler`` over the run's first train iterations, main process only.

    ``wait`` iterations are skipped, ``warmup`` are traced and discarded, ``active`` are recorded
    and written as a Chrome trace (``chrome://tracing``, Perfetto) to
    ``<work_dir>/profiler/trace_iter<first>-<last>.json`` (1-based global iterations); the
    slowest operators are logged. Runs last (LOWEST) so each profiled step ends after the
    optimizer step and the loggers.
    """

    priority = "LOWEST"

    def __init__(self, wait: int = 1, warmup: int = 1, active: int = 3):
        if min(wait, warmup) < 0 or active < 1:
            raise ValueError(f"ProfilerHook needs wait, warmup >= 0 and active >= 1, got {wait}, {warmup}, {active}")
        self.wait, self.warmup, self.active = wait, warmup, active
        self._profiler: torch.profiler.profile | None = None
        self.trace_path: Path | None = None

    def before_run(self, runner) -> None:
        if not runner.accelerator.is_main_process:
            return
        activities = [torch.profiler.ProfilerActivity.CPU]
        if runner.accelerator.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self._steps = self._last_iter = 0
        self._profiler = torch.profiler.profile(
            activities=activities,
            schedule=torch.profiler.schedule(wait=self.wait, warmup=self.warmup, active=self.active, repeat=1),
            on_trace_ready=lambda prof: self._write(prof, runner),
            record_shapes=True,
            profile_memory=True,
        )
        self._profiler.start()

    def after_train_iter(self, runner) -> None:
        if self._profiler is None:
            return
        self._last_iter, self._steps = runner.iter + 1, self._steps + 1
        self._profiler.step()  # may write the trace (_write)
        if self._steps == self.wait + self.warmup + self.active:
            self._stop()

    def after_run(self, runner) -> None:
        if self._profiler is not None:  # the run was shorter than the window: write what was recorded
            self._stop()

    def _stop(self) -> None:
        self._profiler.stop()
        self._profiler = None

    def _write(self, prof: torch.profiler.profile, runner) -> None:
        last = self._last_iter
        first = last - min(self.active, self._steps - self.wait - self.warmup) + 1
        self.trace_path = runner.work_dir / PROFILER_DIR / f"trace_iter{first}-{last}.json"
        self.trace_path.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(self.trace_path))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
        runner.logger.info("Profiled iterations %d-%d, trace %s\n%s", first, last, self.trace_path, table)


def convert_sync_batchnorm(model: torch.nn.Module, enabled: bool, accelerator: Accelerator,
                           logger: logging.Logger | None = None) -> torch.nn.Module:
    """With ``enabled`` and more than one process, turn every BatchNorm (pytorchvideo's
    ``BatchNorm3d`` included) into ``SyncBatchNorm``; call it before ``accelerator.prepare``.

    With one process there is nothing to synchronise and the model is returned unchanged (logged).
    ``SyncBatchNorm`` has no CPU implementation, so multi-process CPU runs are refused.
    """
    logger = logger or logging.getLogger("accel_slowfast")
    if not enabled:
        return model
    if accelerator.num_processes == 1:
        logger.info("sync_bn: one process, nothing to synchronise; keeping plain BatchNorm")
        return model
    if accelerator.device.type == "cpu":
        raise ValueError("sync_bn: torch's SyncBatchNorm runs on GPUs only, not on CPU processes; "
                         "set sync_bn: false")
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    count = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules())
    logger.info("sync_bn: %d BatchNorm layers converted to SyncBatchNorm over %d processes", count,
                accelerator.num_processes)
    return converted


def build_extra_hooks(recipe, model: torch.nn.Module, train_loader: Iterable) -> list[Any]:
    """The optional hooks ``recipe`` switches on (see the table above), for ``runner.register_hook``.

    Hooks with ``state_dict`` (``EMAHook``) must also go to ``accelerator.register_for_checkpointing``
    before any ``load_state``.
    """
    hooks: list[Any] = []
    if recipe.ema:
        hooks.append(EMAHook(model, recipe.ema_momentum, recipe.ema_interval, recipe.ema_warm_up))
    if recipe.precise_bn_batches:
        hooks.append(PreciseBNHook(train_loader, recipe.precise_bn_batches, interval=recipe.eval_interval))
    if recipe.early_stop_metric:
        hooks.append(EarlyStoppingHook(recipe.early_stop_metric, recipe.early_stop_patience, recipe.early_stop_rule))
    if recipe.empty_cache != "none":
        hooks.append(EmptyCacheHook(after_iter=recipe.empty_cache == "iter"))
    if recipe.profile_iters:
        wait, warmup, active = [0, 0, *recipe.profile_iters][-3:]
        hooks.append(ProfilerHook(wait, warmup, active))
    return hooks
