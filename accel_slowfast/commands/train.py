"""``accel-slowfast train`` / ``train.py``: a recipe from the command line, trained (``engine/training.py``).

    accel-slowfast train [RECIPE.yaml] [--key=value ...]      # no recipe: the synthetic default
    accelerate launch [--config_file CONFIG] -m accel_slowfast train RECIPE.yaml    # several processes

The recipe is read before torch is imported (seconds): ``--help`` and a bad key or value are
answered at once. Exit status (``exits.py``): 2 for bad input (one line, before any work where it
can be found then), 1 when the run fails (a non-finite loss, a checkpoint that cannot be
written), 130 after a SIGINT/SIGTERM checkpoint, 75 after a SIGUSR1 one (requeue me).
"""

import sys

from accel_slowfast.commands.exits import exit_status
from accel_slowfast.recipe.io import load_recipe


def main(argv: list[str] | None = None, prog: str = "accel-slowfast train") -> None:
    with exit_status():
        recipe = load_recipe(sys.argv[1:] if argv is None else argv, prog=prog)
    from accel_slowfast.checkpointing.faults import CheckpointWriteError
    from accel_slowfast.engine.faults import NonFiniteLossError
    from accel_slowfast.engine.training import train
    from accel_slowfast.interrupts import Interrupts

    # the stop-signal handlers stay until the process exits: a stop during the shutdown keeps the status
    with Interrupts() as interrupts, exit_status(failed=(NonFiniteLossError, CheckpointWriteError),
                                                  interrupts=interrupts):
        train(recipe, interrupts)
