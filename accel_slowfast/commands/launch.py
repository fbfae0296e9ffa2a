"""``accel-slowfast launch``: torchrun that passes stop signals on to every rank and exits with the run's status.

    accel-slowfast launch --nproc_per_node=8 train.py RECIPE.yaml --resume_from=auto    # one machine
    accel-slowfast launch --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
        train.py RECIPE.yaml --resume_from=auto                                          # each of 4 machines

It takes torchrun's arguments and runs torchrun's elastic agent in this process. What differs
is what a stop signal does. torchrun starts each rank in a session of its own, so a signal to
the job's process group reaches torchrun alone: it dies at once on SIGUSR1 (SLURM's time-limit
notice; the ranks never hear of it and train on), and after forwarding SIGTERM/SIGINT it exits
1 with a traceback. ``accelerate launch`` with several processes runs the same agent (SIGTERM:
exit 143). Here SIGTERM, SIGINT and SIGUSR1 are passed on to every rank (repeats too: a rank
ignores a repeated SIGTERM/SIGUSR1 and takes a second Ctrl-C as "stop now"), the ranks save
their checkpoint together (``interrupts.py``), and the launcher exits with their status: 130
after SIGTERM/SIGINT, 75 after SIGUSR1 ("requeue me"). Any other failure is reported as
torchrun reports it (exit 1).

``--max_restarts`` stays 0: restarting ranks that stopped on a signal would undo the stop. A
scheduler requeues the job and ``--resume_from=auto`` continues it.
"""

import os
import signal
import sys

import psutil
from torch.distributed import run as torchrun
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record

from accel_slowfast.commands.exits import exit_status
from accel_slowfast.errors import UserError
from accel_slowfast.interrupts import EXIT_INTERRUPTED, EXIT_REQUEUE, LAUNCHER_ENV, STOP_SIGNALS, exit_code

STOP_CODES = (EXIT_INTERRUPTED, EXIT_REQUEUE)


class Forwarder:
    """The launcher's handler of the stop signals: each one is passed on to every rank.

    Before any rank has started (the rendezvous) the launcher exits at once with the signal's
    status: there is nothing to save. After the ranks have ended, a signal changes nothing: their
    status stands.
    """

    def __init__(self):
        self.received = 0  # the first stop signal (0: none)

    def __call__(self, signum: int, frame) -> None:
        ranks = psutil.Process().children()
        if not ranks and not self.received:
            raise SystemExit(exit_code(signum))
        self.received = self.received or signum
        for rank in ranks:
            try:
                os.kill(rank.pid, signum)  # the rank alone: its loader workers leave the decision to it
            except ProcessLookupError:
                pass  # it has just exited


def torchrun_args(argv: list[str]):
    """torchrun's parsed arguments, the stop signals left to this launcher."""
    args = torchrun.parse_args(argv)
    if args.max_restarts:
        raise UserError(f"launch: --max_restarts={args.max_restarts} would restart ranks that stopped on a "
                          "signal; leave it 0 (the scheduler requeues the job, --resume_from=auto continues it)")
    ours = {signal.Signals(sig).name for sig in STOP_SIGNALS}
    # torchrun installs a handler for each signal in this list when it starts the ranks; the ones it
    # keeps (SIGHUP, SIGQUIT by default) still stop the ranks its way.
    kept = [name.strip() for name in args.signals_to_handle.split(",") if name.strip() not in ours]
    args.signals_to_handle = ",".join(kept or ["SIGHUP"])
    return args


@record
def main(argv: list[str] | None = None) -> None:
    """``accel-slowfast launch``: exit status 0, 130/75 after a stop signal, 1 on a failure, 2 on bad arguments."""
    with exit_status():
        args = torchrun_args(sys.argv[1:] if argv is None else argv)
    os.environ[LAUNCHER_ENV] = "1"  # the ranks know their stop signals reach them through this launcher
    forward = Forwarder()
    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    try:
        torchrun.run(args)
    except ChildFailedError as error:
        codes = {failure.exitcode for failure in error.failures.values()}
        if len(codes) == 1 and codes <= set(STOP_CODES):  # every rank that ended stopped on a signal
            raise SystemExit(codes.pop()) from None  # (the ranks said where their checkpoint is)
        raise
