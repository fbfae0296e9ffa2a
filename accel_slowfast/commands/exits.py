"""How every command ends: one exit status per outcome, chosen here and nowhere else.

====== ==================================================================================
status outcome
====== ==================================================================================
0      done
2      bad input: a ``UserError`` (``errors.py``) or what the command names as such; one
       line ``error: ...`` on stderr, no traceback, before any work where it can be found
1      the run failed: what the command names as a failure (a non-finite loss, a checkpoint
       that cannot be written, an ONNX file that disagrees with PyTorch) or ``CommandFailed``
130/75 stopped: after a stop signal's checkpoint (``InterruptedRun``: 130, 75 for SIGUSR1,
       ``interrupts.py``) or a Ctrl-C (130)
====== ==================================================================================

A command's own result (``data check`` finding unusable videos) is its ``SystemExit(1)``.
This module imports no torch: ``--help`` and a bad recipe key are answered at once.
"""

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

from accel_slowfast.errors import UserError

if TYPE_CHECKING:
    from accel_slowfast.interrupts import Interrupts

BAD_INPUT, FAILED = 2, 1


class CommandFailed(Exception):
    """The command ran and could not finish (a push to the Hub refused); the message says why."""


@contextlib.contextmanager
def exit_status(*, bad_input: tuple[type[Exception], ...] = (), failed: tuple[type[Exception], ...] = (),
                interrupts: "Interrupts | None" = None) -> Iterator[None]:
    """Run a command's body; end the process with the status of how it ended (the table above).

    Args:
        bad_input: the errors the command's library raises for input it cannot use, besides
            ``UserError`` (a video that cannot be read: ``RuntimeError``).
        failed: the errors that mean the run itself failed (exit 1).
        interrupts: a training run's stop-signal handlers: settled on a stop, so that a second
            signal during the shutdown keeps this status; the stop's line says how to resume.
    """
    try:
        yield
    except UserError as error:
        _exit(BAD_INPUT, f"error: {error}")
    except (CommandFailed, *failed) as error:
        _exit(FAILED, f"error: {error}")
    except bad_input as error:
        _exit(BAD_INPUT, f"error: {error}")
    except KeyboardInterrupt as stop:
        if interrupts is not None:
            interrupts.settle()
        # imported here (torch): a stop comes after the command has imported it
        from accel_slowfast.interrupts import EXIT_INTERRUPTED, InterruptedRun

        if isinstance(stop, InterruptedRun):  # its checkpoint is saved
            _exit(stop.exit_code, f"stopped: {stop}; resume with --resume_from=auto")
        resume = (" (no checkpoint of this moment); resume with --resume_from=auto to continue from the last one"
                  if interrupts is not None else "")
        _exit(EXIT_INTERRUPTED, f"stopped: {str(stop) or 'interrupted'}{resume}")


def _exit(status: int, line: str) -> NoReturn:
    print(line, file=sys.stderr)
    raise SystemExit(status) from None
