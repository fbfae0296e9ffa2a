"""``accel-slowfast``: the installed command, one subcommand per task.

    accel-slowfast --help                                          # the subcommands
    accel-slowfast train [RECIPE.yaml] [--key=value ...]           # no recipe: the synthetic default
    accel-slowfast test [RECIPE.yaml] --checkpoint=PATH [--out_dir=DIR] [--key=value ...]
    accelerate launch -m accel_slowfast.engine.training RECIPE.yaml       # several processes, GPUs or nodes
    accel-slowfast launch --nproc_per_node=8 train.py RECIPE.yaml  # the same under a scheduler (signals)

Each subcommand is the ``main`` of one module, which ``python -m accel_slowfast.<module>`` also
runs. ``train`` and ``test`` read their recipe arguments here before that module is imported
(it imports torch, seconds): ``--help`` and a bad key or value are answered at once.
"""

import difflib
import importlib
import sys
from pathlib import Path

from accel_slowfast.checkpointing.names import RECIPE_FILE, find_run_file, reports_dir
from accel_slowfast.errors import UserError
from accel_slowfast.recipe.io import OneLineParser, load_recipe
from accel_slowfast.recipe.recipe import Recipe, RecipeError

COMMANDS = {  # name: (module whose main(argv) runs it, what it does)
    "train": ("accel_slowfast.engine.training", "train a recipe (without one: the built-in synthetic default)"),
    "test": ("accel_slowfast.commands.test",
             "multi-view test of a checkpoint: top-1/5, per-class accuracy, confusion"),
    "predict": ("accel_slowfast.commands.predict",
                "the top classes of a video, from a checkpoint, an export or a Hub id"),
    "export": ("accel_slowfast.export.hub", "a checkpoint as a Hub-ready folder with a model card (--push_to_hub), "
               "or as model.onnx (--format onnx)"),
    "convert": ("accel_slowfast.commands.convert", "an mmaction2 SlowFast checkpoint in this package's layout"),
    "data": ("accel_slowfast.commands.data", "data check RECIPE.yaml: class counts, unusable videos; "
             "data prepare SRC OUT: videos for fast seeking or frames, and lists"),
    "models": ("accel_slowfast.models.builders", "parameters, multiply-adds and FLOPs of the model presets"),
    "launch": ("accel_slowfast.commands.launch",
               "torchrun passing stop signals to every rank, exit 130/75 (schedulers)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join([
        "usage: accel-slowfast COMMAND [ARGUMENTS ...]", "",
        "SlowFast action recognition trained the mmaction2 way on pytorchvideo + Accelerate.", "",
        "commands:", *lines, "",
        "`accel-slowfast COMMAND --help` lists a command's arguments. Several processes (GPUs, nodes):",
        "  accelerate launch [--config_file CONFIG] -m accel_slowfast.engine.training [RECIPE.yaml] [--key=value ...]",
    ])


def test_arguments(argv: list[str], prog: str = "accel-slowfast test") -> tuple[str, Path, Recipe]:
    """``test``'s checkpoint, output folder and recipe, from ``[RECIPE.yaml] --checkpoint=PATH
    [--out_dir=DIR] [--key=value ...]``.

    Without a recipe file the recipe is the checkpoint's run's (``workdir.find_run_file``), or the
    defaults for a checkpoint that no run of ours made. Without ``--out_dir`` the files go beside
    the checkpoint (``workdir.reports_dir``).
    """
    parser = OneLineParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--out_dir", default="")
    args, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        load_recipe(rest, prog=f"{prog} --checkpoint=PATH [--out_dir=DIR]")  # prints the help: needs no checkpoint
    if not args.checkpoint:
        raise RecipeError("test needs --checkpoint=PATH (an epoch folder, a best_*.pth or any load_from file)")
    if not (rest and not rest[0].startswith("-")):  # no recipe file: the run's own, if it has one
        try:
            rest = [str(find_run_file(args.checkpoint, RECIPE_FILE)), *rest]
        except FileNotFoundError:
            pass  # a file from elsewhere (a zoo .pyth, an mmaction2 .pth): the defaults and the command line
    out_dir = Path(args.out_dir) if args.out_dir else reports_dir(args.checkpoint)
    return args.checkpoint, out_dir, load_recipe(rest, prog=f"{prog} --checkpoint=PATH [--out_dir=DIR]")


def run(command: str, argv: list[str], prog: str) -> None:
    """Run subcommand ``command`` on ``argv``; ``prog`` names it in ``--help``."""
    try:
        if command == "train":
            load_recipe(argv, prog)  # the module parses again, in milliseconds
        elif command == "test":
            test_arguments(argv, prog)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(importlib.import_module(COMMANDS[command][0]).main(argv))


def main(argv: list[str] | None = None) -> None:
    """The ``accel-slowfast`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        raise SystemExit(0 if argv else 2)
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "`accel-slowfast --help` lists them"
        print(f"error: unknown command '{command}'; {hint}", file=sys.stderr)
        raise SystemExit(2)
    run(command, args, f"accel-slowfast {command}")
