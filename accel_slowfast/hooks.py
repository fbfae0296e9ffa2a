"""Built-in hooks. A hook is an object whose methods are named after runner events (see
``runner.EVENTS``) and take the runner; missing methods are skipped. Priorities follow mmcv
(lower runs first):

==================== ================ =======================================================
hook                 priority         does
==================== ================ =======================================================
``LrScheduleHook``   VERY_HIGH (10)   sets the LR of every param group before each iteration
``MomentumSchedule`` HIGH (30)        momentum (SGD) or beta1 (Adam) schedules (``schedules.py``)
``OptimizerHook``    ABOVE_NORMAL(40) backward, L2 gradient clipping, step (accumulation aware)
``SamplerSeedHook``  NORMAL (50)      ``set_epoch`` on the loader: shuffling and augmentation
``EMAHook``          NORMAL (50)      [extra] weight average, swapped in for evaluation/checkpoints
``EmptyCacheHook``   NORMAL (50)      [extra] ``torch.cuda.empty_cache()`` after epochs/iterations
``PreciseBNHook``    BELOW_NORMAL(60) [extra] BN statistics of N train batches before evaluation
``IterTimerHook``    LOW (70)         ``time`` and ``data_time`` per iteration
``EvalHook``         LOW (70)         metrics every ``interval`` epochs and at the last one
``EarlyStoppingHook`` 80              [extra] ends the run when a val metric stops improving
``LoggerHook``       VERY_LOW (90)    text log, ``metrics.jsonl``, trackers, progress bar
``ProfilerHook``     LOWEST (100)     [extra] ``torch.profiler`` Chrome trace of a window of iterations
``CheckpointHook``   LOWEST (100)     resumable state every ``interval`` epochs / iterations and at the end
``InterruptHook``    LOWEST (100)     SIGINT/SIGTERM/SIGUSR1: checkpoint after the step, then stop (``interrupts.py``)
==================== ================ =======================================================

[extra]: optional hooks in ``extra_hooks.py``, switched on by recipe keys (``ema``, ``empty_cache``,
``precise_bn_batches``, ``early_stop_metric``, ``profile_iters``).

``CheckpointHook`` runs last (mmcv: NORMAL) so an epoch's checkpoint already holds that
epoch's evaluation (best score) and its log lines: a resumed run neither forgets the best
score nor re-logs an epoch.
"""

import json
import logging
import os
import shutil
import signal
import time
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from accel_slowfast.evaluation import score_videos
from accel_slowfast.faults import NonFiniteLossError, any_process, write_failure
from accel_slowfast.interrupts import deferred
from accel_slowfast.schedules import LrScheduleHook as LrScheduleHook  # the schedule hooks live with their formulas
from accel_slowfast.schedules import MomentumScheduleHook as MomentumScheduleHook
from accel_slowfast.workdir import (
    CHECKPOINT_DIR,
    EPOCH_PREFIX,
    ITER_PREFIX,
    RECIPE_FILE,
    STAGING_PREFIX,
    find_resume_checkpoint,
    sorted_checkpoints,
    write_manifest,
)


class OptimizerHook:
    """Backward, optional L2 gradient clipping and the optimizer step, in ``after_train_iter``.

    Inside the runner's ``accelerator.accumulate`` block Accelerate scales the loss by
    ``1 / gradient_accumulation_steps``, skips the gradient all-reduce on all but the last
    micro-batch, and turns ``step``/``zero_grad`` into no-ops there: N micro-batches make one step.

    A NaN/inf loss (on any process) raises ``NonFiniteLossError`` naming the iteration and the
    last checkpoint, before anything is stepped; with ``skip_nonfinite`` the accumulation window
    is dropped instead (no step) and counted in ``runner.meta["skipped_steps"]``. The check
    reads one value per iteration: the price of never stepping on a NaN.
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, grad_clip: float = 0.0, skip_nonfinite: bool = False):
        self.grad_clip, self.skip_nonfinite = grad_clip, skip_nonfinite

    def after_train_iter(self, runner) -> None:
        accelerator = runner.accelerator
        loss = runner.outputs["loss"]
        if any_process(accelerator, not bool(torch.isfinite(loss.detach()).all())):
            self._nonfinite(runner, float(loss.detach().float().mean()))
            return
        accelerator.backward(loss)
        if accelerator.sync_gradients and self.grad_clip > 0:
            grad_norm = accelerator.clip_grad_norm_(runner.model.parameters(), self.grad_clip)
            runner.log_buffer.update({"grad_norm": grad_norm})
        runner.optimizer.step()
        runner.optimizer.zero_grad()

    def _nonfinite(self, runner, value: float) -> None:
        where = f"iteration {runner.iter + 1} (epoch {runner.epoch + 1}, iteration {runner.inner_iter + 1} of it)"
        if not self.skip_nonfinite:
            last = find_resume_checkpoint(runner.work_dir)
            raise NonFiniteLossError(
                f"loss is {value} at {where}; nothing was stepped. The last good checkpoint is "
                f"{last or 'none yet'}. Lower lr, keep grad_clip on, or set skip_nonfinite_loss to skip such steps.")
        runner.meta["skipped_steps"] = runner.meta.get("skipped_steps", 0) + 1
        runner.logger.warning("loss is %s at %s: optimizer step skipped (%d so far)", value, where,
                              runner.meta["skipped_steps"])
        if runner.accelerator.sync_gradients:  # drop the whole accumulation window
            runner.optimizer.zero_grad()


class SamplerSeedHook:
    """mmcv's ``DistSamplerSeedHook``: tell the loader (sampler and dataset) the epoch."""

    priority = "NORMAL"

    def before_train_epoch(self, runner) -> None:
        set_loader_epoch(runner.data_loader, runner.epoch)


def set_loader_epoch(loader, epoch: int) -> None:
    """Tell a loader's sampler (shuffling) and dataset (augmentation) the epoch.

    Accelerate's prepared loader forwards ``set_epoch`` to the dataset only when its sampler has
    no ``set_epoch`` (accelerate 1.15: not under multi-process sharding), so call both.
    """
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    if hasattr(getattr(loader, "dataset", None), "set_epoch"):
        loader.dataset.set_epoch(epoch)


class IterTimerHook:
    """``data_time`` (waiting for the batch) and ``time`` (the whole iteration) in the log buffer."""

    priority = "LOW"

    def before_train_epoch(self, runner) -> None:
        self._tic = time.perf_counter()

    def before_train_iter(self, runner) -> None:
        runner.log_buffer.update({"data_time": time.perf_counter() - self._tic})

    def after_train_iter(self, runner) -> None:
        runner.log_buffer.update({"time": time.perf_counter() - self._tic})
        self._tic = time.perf_counter()


class EvalHook:
    """Top-1/top-5/mean-class accuracy every ``interval`` epochs and after the last epoch, with
    the number of videos scored (``num_videos``) and not scored (``num_failed``).

    Keeps the best model (by ``save_best``, higher is better) as
    ``checkpoints/best_<metric>_epoch_<N>.pth`` and its score in ``runner.meta``. Runs on every
    process (scores are gathered); only the main process writes.
    """

    priority = "LOW"

    def __init__(self, data_loader, interval: int = 1, save_best: str = "top1_acc"):
        self.data_loader, self.interval, self.save_best = data_loader, interval, save_best

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        if epoch % self.interval and epoch != runner.max_epochs:
            return
        results = score_videos(runner.model, self.data_loader, runner.accelerator)
        runner.eval_results = results  # per-video scores, for TrackerHook (confusion matrix, clips)
        metrics = results.metrics()
        if metrics["num_failed"]:
            runner.logger.warning("Epoch %d: %d validation videos could not be decoded and were not scored "
                                  "(listed in bad_videos.txt)", epoch, metrics["num_failed"])
        runner.log_buffer.output.update(metrics)
        runner.log_buffer.ready = True
        runner.meta["last_eval"] = {"epoch": epoch, **metrics}  # for the run's summary
        score = metrics[self.save_best]
        if score > runner.meta.get("best_score", float("-inf")):
            self._save_best(runner, epoch, score)

    def _save_best(self, runner, epoch: int, score: float) -> None:
        accelerator = runner.accelerator
        old = runner.meta.get("best_ckpt")
        path = runner.work_dir / CHECKPOINT_DIR / f"best_{self.save_best}_epoch_{epoch}.pth"
        state = accelerator.get_state_dict(runner.model)
        error = None
        if accelerator.is_main_process:
            staging = path.with_name(STAGING_PREFIX + path.name)
            try:  # written under a temporary name and renamed: never a half-written best file
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"state_dict": state, "meta": {"epoch": epoch, self.save_best: score}}, staging)
                os.replace(staging, path)
            except Exception as failure:  # noqa: BLE001 - agree on it, then report it
                error = failure
                staging.unlink(missing_ok=True)
        if any_process(accelerator, error is not None):
            raise write_failure(error, path, runner.work_dir, state_bytes(runner, with_optimizer=False)) from error
        if accelerator.is_main_process:
            if old and Path(old) != path and Path(old).exists():
                Path(old).unlink()
            runner.logger.info("Epoch %d: best %s %.4f, saved %s", epoch, self.save_best, score, path)
        runner.meta.update(best_metric=self.save_best, best_score=score, best_epoch=epoch, best_ckpt=str(path))
        accelerator.wait_for_everyone()


TEST_COMMAND = "accel-slowfast test"  # what the summary tells a user to run next (any launcher: test.py)


class LoggerHook:
    """Text log lines, ``<work_dir>/metrics.jsonl``, Accelerate trackers and a tqdm bar.

    A train record is written every ``interval`` iterations of an epoch and for the rest of
    the epoch at its end; a val record whenever ``EvalHook`` left metrics in the log buffer.
    Loss-like values are averaged over processes; every process must run this hook.
    """

    priority = "VERY_LOW"
    timing_keys = ("time", "data_time")

    def __init__(self, interval: int = 10, use_trackers: bool = False, progress_bar: bool = True):
        self.interval, self.use_trackers, self.progress_bar = interval, use_trackers, progress_bar
        self._bar = None
        self._json = None  # metrics.jsonl, open for the run on the main process

    def before_run(self, runner) -> None:
        self.json_path = runner.work_dir / "metrics.jsonl"
        if not runner.accelerator.is_main_process:
            return
        if self.json_path.exists():
            self._keep_old_records(runner)
        self._json = open(self.json_path, "a", buffering=1)  # line-buffered: each record is on disk once written
        self._close_json = weakref.finalize(self, self._json.close)  # also when the run ends by an exception

    def after_run(self, runner) -> None:
        """The run's summary: best and last metrics, where things are, what to run next; the
        trackers get the best values (``best/<metric>``, ``best/epoch``)."""
        meta = runner.meta
        if self.use_trackers and "best_epoch" in meta:
            best = {f"best/{meta['best_metric']}": meta["best_score"], "best/epoch": meta["best_epoch"]}
            runner.accelerator.log(best, step=runner.iter)
        if self._json is not None:
            self._close_json()
            self._json = None
        if runner.accelerator.is_main_process:
            runner.logger.info("\n".join(summary_lines(runner)))


    def _keep_old_records(self, runner) -> None:
        """A fresh run sets the old file aside; a resumed run drops the records after its checkpoint."""
        if runner.iter == 0:  # a fresh run in a used work_dir: keep the old records aside
            stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(self.json_path.stat().st_mtime))
            backup, n = self.json_path.with_name(f"metrics_{stamp}.jsonl"), 1
            while backup.exists():
                backup, n = self.json_path.with_name(f"metrics_{stamp}_{n}.jsonl"), n + 1
            self.json_path.rename(backup)
            return
        # A resumed run re-creates everything after its checkpoint: drop those records.
        kept = [line for line in self.json_path.read_text().splitlines()
                if line and json.loads(line)["iter"] <= runner.iter]
        self.json_path.write_text("".join(line + "\n" for line in kept))

    def before_train_epoch(self, runner) -> None:
        start = runner.start_inner_iter  # > 0 when resuming mid-epoch: keep the restored values
        if not start:
            runner.log_buffer.clear()
        self._logged_inner = start - start % self.interval
        if self.progress_bar and runner.accelerator.is_main_process:
            self._bar = tqdm(total=len(runner.data_loader), desc=f"epoch {runner.epoch + 1}/{runner.max_epochs}",
                             leave=False, dynamic_ncols=True)

    def after_train_iter(self, runner) -> None:
        done = runner.inner_iter + 1
        if done % self.interval == 0 or done == len(runner.data_loader):
            runner.log_buffer.average(done - self._logged_inner)
            self._logged_inner = done
            self._write(runner, self._train_record(runner))
            runner.log_buffer.clear_output()
        if self._bar is not None:
            self._bar.update(1)  # draws the bar (with the new postfix) once: at most every 0.1 s

    def after_train_epoch(self, runner) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if runner.log_buffer.ready:
            metrics = dict(runner.log_buffer.output)
            self._write(runner, {"mode": "val", "epoch": runner.epoch + 1, "iter": runner.iter, **metrics})
            runner.log_buffer.clear_output()

    def before_val_epoch(self, runner) -> None:
        runner.log_buffer.clear()  # the train epoch before it is fully logged

    def after_val_epoch(self, runner) -> None:
        runner.log_buffer.average()
        record = {"mode": "val", "epoch": runner.epoch, "iter": runner.iter}
        record.update(self._reduced(runner, runner.log_buffer.output))
        self._write(runner, record)
        runner.log_buffer.clear()

    def _train_record(self, runner) -> dict[str, Any]:
        output = runner.log_buffer.output
        record = {
            "mode": "train",
            "epoch": runner.epoch + 1,
            "iter": runner.iter + 1,
            "lr": runner.optimizer.param_groups[0]["lr"],
        }
        record.update(self._reduced(runner, {k: v for k, v in output.items() if k not in self.timing_keys}))
        record.update({k: output[k] for k in self.timing_keys if k in output})
        if self._bar is not None and "loss" in record:
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.3e}", refresh=False)
        return record

    @staticmethod
    def _reduced(runner, values: dict[str, float]) -> dict[str, float]:
        """Mean over processes of per-process averages (one collective per log line)."""
        if not values or runner.accelerator.num_processes == 1:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], device=runner.accelerator.device)
        tensor = runner.accelerator.reduce(tensor, reduction="mean")
        return dict(zip(keys, tensor.tolist(), strict=True))

    def _write(self, runner, record: dict[str, Any]) -> None:
        if self.use_trackers:
            runner.accelerator.log({f"{record['mode']}/{k}": v for k, v in record.items()
                                    if k not in ("mode", "iter")}, step=record["iter"])
        if not runner.accelerator.is_main_process:
            return
        self._json.write(json.dumps(record) + "\n")
        runner.logger.info(self._format(runner, record))

    def _format(self, runner, record: dict[str, Any]) -> str:
        values = {k: v for k, v in record.items() if k not in ("mode", "epoch", "iter")}
        parts = [f"{k}: {v:.4e}" if k == "lr" else f"{k}: {v}" if isinstance(v, int) else f"{k}: {v:.4f}"
                 for k, v in values.items()]
        if record["mode"] == "train":
            head = f"Epoch [{record['epoch']}][{runner.inner_iter + 1}/{len(runner.data_loader)}]"
            if "time" in record:
                eta = timedelta(seconds=int(record["time"] * (runner.max_iters - record["iter"])))
                parts.insert(1, f"eta: {eta}")
        else:
            head = f"Epoch(val) [{record['epoch']}]"
        return f"{head}\t" + ", ".join(parts)


def summary_lines(runner) -> list[str]:
    """What a finished run tells its user, as log lines."""
    meta, work_dir = runner.meta, runner.work_dir.resolve()
    lines = [f"Finished: {runner.epoch} epochs, {runner.iter} iterations"]
    if "best_epoch" in meta:
        lines.append(f"  best {meta['best_metric']}: {meta['best_score']:.4f} at epoch {meta['best_epoch']} "
                     f"({meta['best_ckpt']})")
    if "last_eval" in meta:
        last = {k: v for k, v in meta["last_eval"].items() if k != "epoch"}
        lines.append(f"  last evaluation (epoch {meta['last_eval']['epoch']}): " +
                     ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items()))
    lines.append(f"  work_dir: {work_dir} (recipe.yaml, metrics.jsonl, the text log, checkpoints/)")
    if "best_ckpt" in meta:
        lines.append(f"  next, the multi-view test: {TEST_COMMAND} --checkpoint={meta['best_ckpt']}")
    return lines


class CheckpointHook:
    """Save the full training state every ``interval`` epochs, after the last epoch, and every
    ``interval_iters`` iterations (0: never) — so a run can resume from any of those moments.

    ``accelerator.save_state`` writes model, optimizer, grad scaler, every process's RNG
    states, the sampler and the objects registered with ``register_for_checkpointing`` (the
    runner's progress, below) into a temporary folder that the main process renames to
    ``checkpoints/epoch_<N>`` or ``checkpoints/iter_<N>`` once complete: a half-written
    checkpoint is never picked up. Iteration checkpoints are taken after an optimizer step
    only, so no partly accumulated gradient is lost. ``max_keep_ckpts`` newest checkpoints are
    kept (0 keeps all); the best weights are a separate file and never deleted.
    """

    priority = "LOWEST"

    def __init__(self, progress: "RunnerProgress", interval: int = 1, max_keep_ckpts: int = 0,
                 interval_iters: int = 0, recipe: dict[str, Any] | None = None):
        self.progress, self.interval, self.max_keep_ckpts = progress, interval, max_keep_ckpts
        self.interval_iters = interval_iters
        self.recipe = recipe or {}  # saved in every checkpoint: a resume compares it with its own
        self.last_saved: tuple[int, Path] | None = None  # (global iteration, folder) of the newest save

    def after_train_iter(self, runner) -> None:
        done = runner.iter + 1
        end_of_epoch = runner.inner_iter + 1 == len(runner.data_loader)  # the epoch checkpoint follows
        if (self.interval_iters and done % self.interval_iters == 0 and not end_of_epoch
                and runner.accelerator.sync_gradients):
            self.save(runner, f"{ITER_PREFIX}{done}", epoch=runner.epoch, inner_iter=runner.inner_iter + 1,
                      iter=done)

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        if epoch % self.interval and epoch != runner.max_epochs and not runner.stop_training:
            return  # (an early-stopped run still gets its last epoch's checkpoint)
        self.save(runner, f"{EPOCH_PREFIX}{epoch}", epoch=epoch, inner_iter=0, iter=runner.iter)

    def save(self, runner, name: str, **position: int) -> None:
        """Write ``checkpoints/<name>`` holding the runner at ``position`` (every process calls this).

        A failed write (on any process) removes the partial folder and raises
        ``CheckpointWriteError`` on every process; a full disk says how much room the checkpoint
        needs and which checkpoint is the last good one. PyTorch's worker-death signal is held
        back while writing (``interrupts.deferred``), so no checkpoint is cut in half by it.
        """
        accelerator = runner.accelerator
        root = runner.work_dir / CHECKPOINT_DIR
        final, staging = root / name, root / f"{STAGING_PREFIX}{name}"
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        self.progress.record(runner, **position)
        error = None
        with deferred(signal.SIGCHLD):
            try:
                accelerator.save_state(str(staging))
            except Exception as failure:  # noqa: BLE001 - any failure: agree on it, then report it
                error = failure
            accelerator.wait_for_everyone()  # every process's files are written (or failed)
            if accelerator.is_main_process and error is None:
                try:
                    (staging / RECIPE_FILE).write_text(yaml.safe_dump(self.recipe, sort_keys=False))
                    write_manifest(staging, {**self.progress.state_dict(),
                                             "num_processes": accelerator.num_processes})
                    shutil.rmtree(final, ignore_errors=True)
                    os.replace(staging, final)
                except Exception as failure:  # noqa: BLE001
                    error = failure
            if any_process(accelerator, error is not None):
                if accelerator.is_main_process:
                    shutil.rmtree(staging, ignore_errors=True)
                raise write_failure(error, final, runner.work_dir, state_bytes(runner)) from error
        self.last_saved = (position["iter"], final)
        if accelerator.is_main_process:
            runner.logger.info("Saved checkpoint %s", final)
            if self.max_keep_ckpts > 0:
                for old in sorted_checkpoints(root)[: -self.max_keep_ckpts]:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()


def state_bytes(runner, with_optimizer: bool = True) -> int:
    """Bytes of the model (and optimizer) tensors: about what one checkpoint takes on disk."""
    tensors = list(runner.accelerator.unwrap_model(runner.model).state_dict().values())
    if with_optimizer:
        tensors += [v for state in runner.optimizer.state_dict()["state"].values() for v in state.values()]
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


class RunnerProgress:
    """The runner's position as a checkpointable object for Accelerate: ``epoch`` (the epoch to
    run next, or the one in progress), ``inner_iter`` (its iterations done), ``iter`` (global
    iterations done), ``meta`` (best score...) and the log buffer's values not yet logged."""

    def __init__(self):
        self.state: dict[str, Any] = {"epoch": 0, "inner_iter": 0, "iter": 0, "meta": {}, "log_history": {}}

    def record(self, runner, epoch: int, inner_iter: int, iter: int) -> None:
        history = {key: [(float(value), count) for value, count in entries]
                   for key, entries in runner.log_buffer.history.items()} if inner_iter else {}
        self.state = {"epoch": epoch, "inner_iter": inner_iter, "iter": iter, "meta": dict(runner.meta),
                      "log_history": history}

    def restore(self, runner) -> None:
        runner.epoch, runner.iter = self.state["epoch"], self.state["iter"]
        runner.start_inner_iter = self.state.get("inner_iter", 0)
        runner.meta.update(self.state["meta"])
        for key, entries in self.state.get("log_history", {}).items():
            runner.log_buffer.history[key] = [tuple(entry) for entry in entries]

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state


def setup_text_logger(work_dir: Path, is_main_process: bool, prefix: str = "train") -> logging.Logger:
    """``accel_slowfast`` logger: console + ``<work_dir>/<prefix>_<time>.log`` on the main process."""
    logger = logging.getLogger("accel_slowfast")
    logger.setLevel(logging.INFO if is_main_process else logging.ERROR)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s - %(levelname)s - %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if is_main_process:
        handlers.append(logging.FileHandler(work_dir / f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}.log"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
