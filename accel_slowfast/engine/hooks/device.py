"""Hooks about the device: its memory cache and a profile of its work.

==================== ============ ============================================================
hook                 priority     does
==================== ============ ============================================================
``EmptyCacheHook``   NORMAL       ``torch.cuda.empty_cache()`` after epochs (and iterations)
``ProfilerHook``     LOWEST       ``torch.profiler`` over a window of iterations, Chrome trace
                                  in ``<work_dir>/profiler/``
==================== ============ ============================================================
"""

from pathlib import Path

import torch

from accel_slowfast.checkpointing.names import PROFILER_DIR


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
    loggers (the runner's optimizer step comes before every ``after_train_iter`` hook).
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
