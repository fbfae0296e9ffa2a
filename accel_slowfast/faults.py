"""What happens when things go wrong: non-finite losses, interrupts, an unusable work_dir.

- A NaN/inf loss stops the run with ``NonFiniteLossError`` naming the iteration and the last
  good checkpoint (``skip_nonfinite_loss``: the optimizer step is skipped instead).
- Ctrl-C or SIGTERM (a scheduler's preemption notice) lets the current optimizer step finish,
  saves ``checkpoints/iter_<N>`` and stops; ``--resume_from=auto`` continues exactly there. A
  second Ctrl-C stops at once.
- An unwritable ``work_dir`` or a disk without room for a checkpoint fails before training.
"""

import shutil
import signal
import threading
from pathlib import Path

import torch

from accel_slowfast.config import RecipeError


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite."""


class InterruptedRun(KeyboardInterrupt):
    """The run stopped on request after saving a resumable checkpoint."""


def any_process(accelerator, flag: bool) -> bool:
    """True if ``flag`` is set on any process (a collective: every process must call it)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag)], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item())


class InterruptHook:
    """On SIGINT/SIGTERM, finish the optimizer step, save an iteration checkpoint and stop.

    Every process checks the request after each iteration (one tiny all-reduce when
    distributed), so all of them save the same iteration and none waits for the others.
    """

    priority = "LOWEST"  # after CheckpointHook: a regular checkpoint of this iteration comes first

    def __init__(self, checkpoint_hook):
        self.checkpoint_hook = checkpoint_hook
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second request: stop now
            raise KeyboardInterrupt
        self.requested = True

    def before_run(self, runner) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def after_run(self, runner) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def after_train_iter(self, runner) -> None:
        if not any_process(runner.accelerator, self.requested) or not runner.accelerator.sync_gradients:
            return
        done = runner.iter + 1
        self.checkpoint_hook.save(runner, f"iter_{done}", epoch=runner.epoch, inner_iter=runner.inner_iter + 1,
                                  iter=done)
        self.after_run(runner)
        runner.logger.warning("Interrupted after iteration %d: saved a checkpoint; resume with --resume_from=auto",
                              done)
        raise InterruptedRun(f"interrupted after iteration {done}")


def check_work_dir(work_dir: Path, checkpoint_bytes: int) -> None:
    """Fail before training when ``work_dir`` cannot be written or cannot hold two checkpoints."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise RecipeError(f"work_dir {work_dir} is not writable ({error}); choose another --work_dir") from None
    free = shutil.disk_usage(work_dir).free
    if free < 2 * checkpoint_bytes:
        raise RecipeError(f"work_dir {work_dir} has {free / 2**20:.0f} MiB free but a checkpoint needs about "
                          f"{checkpoint_bytes / 2**20:.0f} MiB (two are written while one is replaced); "
                          "free some space or choose another --work_dir")
