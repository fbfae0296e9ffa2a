"""``accel-slowfast test`` / ``test.py``: the multi-view test of a checkpoint (``engine/testing.py``).

    accelerate launch test.py --checkpoint=work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth   # the run's recipe
    accelerate launch test.py RECIPE.yaml --checkpoint=PATH --num_clips=2                      # another recipe
    accelerate launch test.py --checkpoint=PATH --out_dir=results/x                           # the reports there
    accelerate launch -m accel_slowfast test RECIPE.yaml --checkpoint=PATH               # = accel-slowfast test

Without a recipe file the checkpoint's own run decides: its ``recipe.yaml`` (the copy inside a
checkpoint folder, else the run's work_dir) is the base, and command-line keys still win. The
arguments are read before torch is imported: ``--help`` and a bad key are answered at once.
"""

import sys
from pathlib import Path

from accel_slowfast.checkpointing.names import RECIPE_FILE, find_run_file, reports_dir
from accel_slowfast.commands.exits import exit_status
from accel_slowfast.errors import RecipeError
from accel_slowfast.recipe.io import OneLineParser, load_recipe
from accel_slowfast.recipe.recipe import Recipe


def test_arguments(argv: list[str], prog: str = "accel-slowfast test") -> tuple[str, Path, Recipe]:
    """``test``'s checkpoint, output folder and recipe, from ``[RECIPE.yaml] --checkpoint=PATH
    [--out_dir=DIR] [--key=value ...]``.

    Without a recipe file the recipe is the checkpoint's run's (``names.find_run_file``), or the
    defaults for a checkpoint that no run of ours made. Without ``--out_dir`` the files go beside
    the checkpoint (``names.reports_dir``).
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


def main(argv: list[str] | None = None, prog: str = "accel-slowfast test") -> None:
    with exit_status():
        checkpoint, out_dir, recipe = test_arguments(sys.argv[1:] if argv is None else argv, prog)
        from accel_slowfast.engine.testing import run_test  # torch: after the arguments are known to be good

        run_test(recipe, checkpoint, out_dir)
