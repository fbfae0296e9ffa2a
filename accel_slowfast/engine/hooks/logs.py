"""Hooks that report: iteration timing, the text log, ``metrics.jsonl``, the trackers, the progress
bar, and the run's summary at the end.

==================== ============ ============================================================
hook                 priority     does
==================== ============ ============================================================
``IterTimerHook``    LOW          ``time`` and ``data_time`` of each iteration
``LoggerHook``       VERY_LOW     log lines, ``metrics.jsonl``, trackers, the bar, the summary
==================== ============ ============================================================
"""

import json
import time
import weakref
from datetime import timedelta
from typing import Any

import torch

from accel_slowfast.checkpointing.names import METRICS_FILE, set_aside
from accel_slowfast.evaluation.hooks import EvalHook, just_evaluated
from accel_slowfast.progress import Progress

SUMMARY = "summary"  # a log record's flag: the run's summary, which a notebook shows (accelerator.setup_text_logger)
TEST_COMMAND = "accel-slowfast test"  # what the summary tells a user to run next (any launcher: test.py)


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


class LoggerHook:
    """Text log lines, ``<work_dir>/metrics.jsonl``, Accelerate trackers and a tqdm bar.

    A train record is written every ``interval`` iterations of an epoch and for the rest of
    the epoch at its end; a val record after each epoch ``evaluation`` (the run's ``EvalHook``) evaluated.
    Loss-like values are averaged over processes; every process must run this hook.
    """

    priority = "VERY_LOW"
    timing_keys = ("time", "data_time")

    def __init__(self, interval: int = 10, use_trackers: bool = False, progress_bar: bool = True, *,
                 evaluation: EvalHook | None = None):
        self.interval, self.use_trackers, self.progress_bar = interval, use_trackers, progress_bar
        self.evaluation = evaluation
        self._bar = None
        self._json = None  # metrics.jsonl, open for the run on the main process

    def before_run(self, runner) -> None:
        self.json_path = runner.work_dir / METRICS_FILE
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
            runner.logger.info("\n".join(summary_lines(runner)), extra={SUMMARY: True})

    def _keep_old_records(self, runner) -> None:
        """A fresh run sets the old file aside; a resumed run drops the records after its checkpoint."""
        if runner.iter == 0:  # a fresh run in a used work_dir: keep the old records aside
            set_aside(self.json_path)
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
            # no plain lines where there is no bar: the log lines every interval say it
            self._bar = Progress(len(runner.data_loader), f"epoch {runner.epoch + 1}/{runner.max_epochs}", lines=False)

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
        evaluation = just_evaluated(self.evaluation, runner) if self.evaluation is not None else None
        if evaluation is not None:
            self._write(runner, {"mode": "val", "epoch": evaluation.epoch, "iter": runner.iter, **evaluation.metrics})

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
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.3e}")
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
