"""What a signal does to a run: finish the step, save a resumable checkpoint, exit with a code
the caller can act on.

Schedulers stop jobs by signalling every process of the job, data-loader workers included:

=========== =============================================== ==================================
signal      sent by                                         the run
=========== =============================================== ==================================
SIGTERM     SLURM (``scancel``, time limit, preemption),    finishes the step, saves
            Kubernetes, ``torchrun`` forwarding its own     ``checkpoints/iter_<N>``, exits 130
SIGINT      Ctrl-C in a terminal (the whole foreground      the same; a second Ctrl-C stops at
            process group), Jupyter's "interrupt kernel"    once
SIGUSR1     SLURM's ``#SBATCH --signal=USR1@90`` (90 s      the same, then exits 75
            before the time limit)                          (``EXIT_REQUEUE``): requeue me
=========== =============================================== ==================================

Only the main process of each rank decides. Data-loader workers block these signals
(``shield_worker``), so a group signal never kills them mid-batch and the checkpoint never
waits on a dead loader; a worker still exits when its own parent terminates it. Every rank
checks after each iteration (one all-reduce), so all of them save the same iteration.

    python train.py RECIPE.yaml; [ $? -eq 75 ] && scontrol requeue "$SLURM_JOB_ID"
"""

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_REQUEUE = 75  # sysexits.h EX_TEMPFAIL: a temporary stop, try again (SLURM: requeue the job)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
# torchrun (and `accelerate launch` with several processes) forwards the SIGINT it got from the
# terminal to ranks that got the same one: a repeat this soon is the same Ctrl-C, not a second one.
SAME_CTRL_C_S = 1.0


class InterruptedRun(KeyboardInterrupt):
    """The run stopped on a signal after saving a resumable checkpoint; ``exit_code`` says how to exit."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupts:
    """Signal handlers that record a stop request instead of stopping (a context manager).

    ``requested`` is the first stop signal received (0: none). Repeats of SIGTERM and SIGUSR1 are
    ignored (a launcher forwards the signal to ranks that already got it from the scheduler); a
    second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (a notebook's
    worker thread) signals cannot be caught, and nothing is installed.

    A command that exits after the stop calls ``settle()``: from then on every stop signal is
    ignored, even after the block, so a second signal during the shutdown (the launcher stopping
    the ranks still running, a scheduler's repeat) cannot replace the exit status with its own.
    """

    def __init__(self):
        self.requested = 0
        self.settled = False
        self._since = 0.0
        self._previous: dict[int, object] = {}

    def settle(self) -> None:
        """The process is exiting on the stop it got: ignore stop signals until it ends.

        Ignored by the kernel (``SIG_IGN``), not by a Python handler: Python puts the default
        action back in place of its own handlers while it finalizes, and a late SIGTERM would
        then still kill the process."""
        self.settled = True
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame) -> None:
        now = time.monotonic()
        if signum == signal.SIGINT == self.requested and now - self._since > SAME_CTRL_C_S:
            raise KeyboardInterrupt("a second Ctrl-C: stopped without a checkpoint")
        if not self.requested:
            self.requested, self._since = signum, now

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.settled:  # the handlers stay, ignoring, until the process ends
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# Set by ``accel-slowfast launch`` for its ranks: their launcher passes stop signals on.
LAUNCHER_ENV = "ACCEL_SLOWFAST_LAUNCH"


def launcher_warning() -> str:
    """Why this rank's launcher may lose a stop signal's checkpoint or exit status, or "".

    torchrun and ``accelerate launch`` with several processes (an elastic agent that is not
    ``accel-slowfast launch``) die at once on SIGUSR1 and exit 1 or 143 after a SIGTERM."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or LAUNCHER_ENV in os.environ:
        return ""
    return ("started by torchrun or `accelerate launch` with several processes: they do not pass SIGUSR1 (SLURM's "
            "time-limit notice) on and do not exit 130/75 after a stop; under a scheduler start "
            "`accel-slowfast launch --nproc_per_node=N train.py ...` (torchrun's arguments)")


# Which signal the processes act on when they received different ones: a stop wins over a requeue.
_PRECEDENCE = (0, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)


def agreed_stop(accelerator, requested: int) -> int:
    """The stop signal (0: none) every process acts on, the same on all of them.

    A collective: every process calls it, once per iteration (one small all-reduce).
    """
    if accelerator.num_processes == 1:
        return requested
    value = torch.tensor([_PRECEDENCE.index(requested)], device=accelerator.device)
    return _PRECEDENCE[int(accelerator.reduce(value, reduction="max").item())]


def rng_states() -> dict[str, Any]:
    """The random generators' states a checkpoint holds (``accelerator.save_state``): Python's,
    NumPy's, torch's CPU generator and every CUDA device's."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what ``rng_states`` took."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None:
        torch.cuda.set_rng_state_all(states["cuda"])


def exit_code(signum: int) -> int:
    return EXIT_REQUEUE if signum == signal.SIGUSR1 else EXIT_INTERRUPTED


def shield_worker() -> None:
    """In a data-loader worker: block the stop signals, so a group signal leaves the worker alone.

    A blocked signal waits for a thread that asks for it: a daemon thread takes each one, and
    exits the worker only on a SIGTERM from its parent (the main process terminating its
    workers, e.g. at interpreter exit), as PyTorch's own worker handler does. Anything else
    (the scheduler, a terminal, SLURM's SIGUSR1) is dropped: the main process decides. Where
    ``sigwaitinfo`` does not exist (macOS), SIGINT and SIGUSR1 are ignored and SIGTERM keeps
    its default.
    """
    if not hasattr(signal, "sigwaitinfo"):
        for sig in (signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # threads started later inherit the mask
    parent = os.getppid()

    def wait_for_signals() -> None:
        while True:
            info = signal.sigwaitinfo(STOP_SIGNALS)
            if info.si_signo == signal.SIGTERM and info.si_pid == parent:
                os._exit(0)

    threading.Thread(target=wait_for_signals, name="signal-shield", daemon=True).start()


@contextlib.contextmanager
def deferred(signum: int) -> Iterator[None]:
    """Hold back the Python handler of ``signum`` until the block ends, then run it once if it came.

    A checkpoint is saved under ``deferred(SIGCHLD)``: PyTorch's SIGCHLD handler raises as soon
    as a loader worker dies, which must not cut a checkpoint in half; the error comes after it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    frames = []
    previous = signal.signal(signum, lambda sig, frame: frames.append(frame))
    try:
        yield
    finally:
        signal.signal(signum, previous)
        if frames and callable(previous):
            previous(signum, frames[-1])
