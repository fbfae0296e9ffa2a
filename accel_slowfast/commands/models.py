"""``accel-slowfast models [PRESET ...] [--clip_len N] [--crop_size N]``: size, multiply-adds and FLOPs.

    accel-slowfast models                                  # every preset, as published (GMACs) and true (GFLOPs)
    accel-slowfast models slowfast_tiny --crop_size=32

The counting is ``models/builders.py``'s ``model_report``.
"""

import argparse
import logging
import sys

from accel_slowfast.models.presets import PRESETS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="accel-slowfast models", description="size, multiply-adds and FLOPs "
                                     "of the model presets")
    parser.add_argument("presets", nargs="*", default=sorted(PRESETS), choices=sorted(PRESETS), metavar="PRESET",
                        help="preset names (default: all)")
    parser.add_argument("--num_classes", type=int, default=400,
                        help="the classifier head's outputs (default: 400, Kinetics-400's)")
    parser.add_argument("--clip_len", type=int, help="frames per view (default: the preset's)")
    parser.add_argument("--crop_size", type=int, help="crop side (default: the preset's)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from accel_slowfast.models.builders import build_model, model_report  # torch: after the arguments

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    # a run's log counts its own head: slowfast_tiny is 0.92 M with 400 classes, 0.69 M with 5
    print(f"Each preset with a {args.num_classes}-class head (--num_classes=N for another head)")
    print(f"{'preset':<28} {'frames':>6} {'crop':>5} {'params (M)':>11} {'GMACs/view':>11} {'GFLOPs/view':>12}")
    print(f"{'':<28} {'':>6} {'':>5} {'':>11} {'(published)':>11} {'(true, 2 x)':>12}")
    for name in args.presets:
        preset = PRESETS[name]
        clip_len, crop = args.clip_len or preset.clip_len, args.crop_size or preset.crop_size
        report = model_report(build_model(name, args.num_classes), clip_len, crop)
        print(f"{name:<28} {clip_len:>6} {crop:>5} {report['params_m']:>11.2f} {report['gmacs_per_view']:>11.2f} "
              f"{report['gflops_per_view']:>12.2f}")
