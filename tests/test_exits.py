"""commands/exits.py: every way a command ends, and the exit status and line each one gets."""

import pytest

from accel_slowfast.commands.exits import CommandFailed, exit_status
from accel_slowfast.errors import CheckpointError, RecipeError
from accel_slowfast.interrupts import EXIT_REQUEUE, InterruptedRun


class _Interrupts:
    settled = False

    def settle(self) -> None:
        self.settled = True


def _ended(raised: BaseException, capsys, **kwargs) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop, exit_status(**kwargs):
        raise raised
    return stop.value.code, capsys.readouterr().err


@pytest.mark.parametrize("raised", [RecipeError("recipe key 'lr' must be float"), CheckpointError("no such file")])
def test_bad_input_is_one_line_and_status_2(raised, capsys):
    assert _ended(raised, capsys) == (2, f"error: {raised}\n")


def test_what_a_command_names_as_bad_input_or_failed_gets_its_status(capsys):
    assert _ended(RuntimeError("cannot read v.avi"), capsys, bad_input=(RuntimeError,)) == (
        2, "error: cannot read v.avi\n")
    assert _ended(ValueError("not an mmaction2 checkpoint"), capsys, failed=(ValueError,)) == (
        1, "error: not an mmaction2 checkpoint\n")
    assert _ended(CommandFailed("pushing to you/x failed"), capsys) == (1, "error: pushing to you/x failed\n")


def test_anything_else_is_a_traceback():
    with pytest.raises(RuntimeError), exit_status(bad_input=(FileNotFoundError,)):
        raise RuntimeError("CUDA out of memory")


def test_a_stop_signals_checkpoint_exits_with_its_code_and_settles_the_handlers(capsys):
    interrupts = _Interrupts()
    stop = InterruptedRun("SIGUSR1 after iteration 3; saved work_dirs/x/checkpoints/iter_3", EXIT_REQUEUE)
    assert _ended(stop, capsys, interrupts=interrupts) == (
        75, f"stopped: {stop}; resume with --resume_from=auto\n")
    assert interrupts.settled


def test_ctrl_c_is_130_and_a_training_run_says_how_to_resume(capsys):
    interrupts = _Interrupts()
    code, line = _ended(KeyboardInterrupt(), capsys, interrupts=interrupts)
    assert code == 130 and interrupts.settled
    assert line == ("stopped: interrupted (no checkpoint of this moment); resume with --resume_from=auto to continue "
                    "from the last one\n")
    assert _ended(KeyboardInterrupt(), capsys) == (130, "stopped: interrupted\n")
