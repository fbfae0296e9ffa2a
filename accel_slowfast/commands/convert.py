"""Convert mmaction2 SlowFast checkpoints to our parameter names (pytorchvideo's)::

    accel-slowfast convert slowfast_r50_4x16x1_k400.pth slowfast_r50_4x16_k400_ours.pth
    # then train with:  model: slowfast_r50_4x16_mmaction2   load_from: slowfast_r50_4x16_k400_ours.pth

``load_from`` converts mmaction2 files on the fly as well; the CLI writes a file once, checks that it
loads strictly into ``--model`` (default ``slowfast_r50_4x16_mmaction2``) and reports what it dropped.

The key mapping is ``models/mmaction2.py``'s. Exit status (``exits.py``): 2 for a file that cannot be
read, 1 when it is not an mmaction2 SlowFast checkpoint or does not fit ``--model``.
"""

import argparse
import logging
import sys
from pathlib import Path

import torch

from accel_slowfast.checkpointing.load import extract_state_dict, load_file
from accel_slowfast.commands.exits import exit_status
from accel_slowfast.models.builders import build_model
from accel_slowfast.models.mmaction2 import is_mmaction2_state_dict, mmaction2_to_ours
from accel_slowfast.models.presets import PRESETS

logger = logging.getLogger("accel_slowfast")


def convert_file(src: str | Path, dst: str | Path, model: str = "slowfast_r50_4x16_mmaction2") -> dict[str, list]:
    """Convert mmaction2 checkpoint ``src`` into ``{'state_dict': ..., 'meta': ...}`` at ``dst``.

    If ``model`` names a preset, the result must load into it strictly (the class count is taken
    from the checkpoint). Returns ``{'dropped': [...]}``: the mmaction2 keys left out.
    """
    if model in PRESETS and PRESETS[model].backbone != "slowfast":
        raise ValueError(f"--model {model} is an {PRESETS[model].backbone} preset: only SlowFast checkpoints convert "
                         f"(for X3D, load pytorchvideo's zoo weights, e.g. X3D_M.pyth, with load_from)")
    state = extract_state_dict(load_file(src), src)
    if not is_mmaction2_state_dict(state):
        raise ValueError(f"{src} is not an mmaction2 SlowFast checkpoint (no 'backbone.slow_path.*' keys)")
    converted, dropped = mmaction2_to_ours(state)
    if model:
        num_classes = converted["blocks.6.proj.weight"].shape[0] if "blocks.6.proj.weight" in converted else 400
        target = build_model(model, num_classes).state_dict()
        missing = sorted(set(target) - set(converted))
        unexpected = sorted(set(converted) - set(target))
        reshaped = sorted(k for k in set(target) & set(converted) if target[k].shape != converted[k].shape)
        if missing or unexpected or reshaped:
            raise ValueError(f"{src} does not match preset {model!r}: {len(missing)} missing {missing[:3]}, "
                             f"{len(unexpected)} unexpected {unexpected[:3]}, {len(reshaped)} reshaped "
                             f"{reshaped[:3]} (pass --model '' to convert without this check)")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": converted, "meta": {"converted_from": str(src), "source_format": "mmaction2"}}, dst)
    if dropped:
        logger.warning("convert: %s keys without a counterpart were dropped: %s", len(dropped), dropped)
    return {"dropped": dropped}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="accel-slowfast convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="mmaction2 .pth checkpoint ({'meta', 'state_dict', 'optimizer'})")
    parser.add_argument("dst", help="output file, loadable with load_from")
    parser.add_argument("--model", default="slowfast_r50_4x16_mmaction2",
                        help="preset the result must load into strictly; '' skips the check")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with exit_status(failed=(ValueError, RuntimeError)):  # not mmaction2's, or not the preset's
        report = convert_file(args.src, args.dst, args.model)
    print(f"wrote {args.dst}" + (f" ({len(report['dropped'])} keys dropped)" if report["dropped"] else ""))
