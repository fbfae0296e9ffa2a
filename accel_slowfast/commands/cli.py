"""``accel-slowfast``: the installed command, one subcommand per module of this package.

    accel-slowfast --help                                          # the subcommands
    accel-slowfast train [RECIPE.yaml] [--key=value ...]           # no recipe: the synthetic default
    accel-slowfast test [RECIPE.yaml] --checkpoint=PATH [--out_dir=DIR] [--key=value ...]
    accelerate launch -m accel_slowfast train RECIPE.yaml          # several processes, GPUs or nodes
    accel-slowfast launch --nproc_per_node=8 train.py RECIPE.yaml  # the same under a scheduler (signals)

Each subcommand is the ``main(argv)`` of its module (``train.py``, ``test.py``, ...), imported only
when it runs: the ``train`` and ``test`` modules read their arguments before they import torch
(seconds), so ``--help`` and a bad key or value are answered at once. Exit statuses: ``exits.py``.
"""

import difflib
import sys
from collections.abc import Callable

from accel_slowfast.commands.exits import exit_status
from accel_slowfast.errors import UserError

COMMANDS = {  # name: what it does
    "train": "train a recipe (without one: the built-in synthetic default)",
    "test": "multi-view test of a checkpoint: top-1/5, per-class accuracy, confusion",
    "predict": "the top classes of a video, from a checkpoint, an export or a Hub id",
    "export": "a checkpoint as a Hub-ready folder with a model card (--push_to_hub), or as model.onnx (--format onnx)",
    "convert": "an mmaction2 SlowFast checkpoint in this package's layout",
    "data": "data check RECIPE.yaml: class counts, unusable videos; data prepare SRC OUT: videos for fast seeking "
            "or frames, and lists",
    "models": "parameters, multiply-adds and FLOPs of the model presets",
    "launch": "torchrun passing stop signals to every rank, exit 130/75 (schedulers)",
}


def command_main(name: str) -> Callable[[list[str]], None]:
    """The ``main`` of command ``name``, its module imported now (not before: most import torch)."""
    if name == "train":
        from accel_slowfast.commands import train as command
    elif name == "test":
        from accel_slowfast.commands import test as command
    elif name == "predict":
        from accel_slowfast.commands import predict as command
    elif name == "export":
        from accel_slowfast.commands import export as command
    elif name == "convert":
        from accel_slowfast.commands import convert as command
    elif name == "data":
        from accel_slowfast.commands import data as command
    elif name == "models":
        from accel_slowfast.commands import models as command
    else:  # launch
        from accel_slowfast.commands import launch as command
    return command.main


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, about in COMMANDS.items()]
    return "\n".join([
        "usage: accel-slowfast COMMAND [ARGUMENTS ...]", "",
        "SlowFast action recognition trained the mmaction2 way on pytorchvideo + Accelerate.", "",
        "commands:", *lines, "",
        "`accel-slowfast COMMAND --help` lists a command's arguments. Several processes (GPUs, nodes):",
        "  accelerate launch [--config_file CONFIG] -m accel_slowfast train [RECIPE.yaml] [--key=value ...]",
    ])


def main(argv: list[str] | None = None) -> None:
    """The ``accel-slowfast`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        raise SystemExit(0 if argv else 2)
    name, args = argv[0], argv[1:]
    with exit_status():
        if name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "`accel-slowfast --help` lists them"
            raise UserError(f"unknown command '{name}'; {hint}")
    command_main(name)(args)
