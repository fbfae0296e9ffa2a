"""Check a recipe's data before training, or convert a video tree once for fast training:

    accel-slowfast data check RECIPE.yaml [--key=value ...] [--decode]
    accel-slowfast data prepare SRC OUT [--to videos|frames] [--splits DIR] [--short-side 256]   # data/prepare.py

Prints, for the training and validation sets, the class counts, and lists the videos that are
missing, unreadable, empty, over the decode budget (``max_decode_pixels``: training refuses them
unread, ``data/probe.py``) or shorter than one clip (those loop). ``--decode`` also decodes the
centre clip of every video with the recipe's decoder, which finds truncated files whose header
still reads fine. Exits with status 1 when a video cannot be used (``prepare``: when one failed).
"""

import argparse
import dataclasses
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from accel_slowfast.commands.exits import exit_status
from accel_slowfast.data import prepare
from accel_slowfast.data.dataset import ClipDataset
from accel_slowfast.data.index import SHOWN, VideoIndex
from accel_slowfast.data.probe import over_budget, probe_errors, probe_index
from accel_slowfast.data.transcode import available_encoders
from accel_slowfast.recipe.io import load_recipe


def _decode_error(dataset: ClipDataset, i: int) -> str:
    try:
        dataset._clips(i, np.random.default_rng(0))
        return ""
    except Exception as error:  # noqa: BLE001 - report whatever made it fail
        return f"{type(error).__name__}: {error}"


def check_split(name: str, index: VideoIndex, span: int, decode_with: ClipDataset | None, *, clip_len: int,
                max_decode_pixels: int) -> int:
    """Print the report of one split; return the number of unusable videos (``max_decode_pixels``: the
    decode budget of a clip of ``clip_len`` frames, as training applies it)."""
    table = probe_index(index)
    print(f"\n== {name}: {len(index)} videos, {len(index.classes)} classes ==")
    counts = Counter(r.label for r in index.records)
    width = max((len(c) for c in index.classes), default=5)
    for label, cls in enumerate(index.classes):
        print(f"  {cls:<{width}}  {counts.get(label, 0):6d}")
    errors = probe_errors(table)
    large = {i: reason for i, reason in over_budget(table, clip_len, max_decode_pixels).items() if i not in errors}
    if decode_with is not None:
        todo = [i for i in range(len(index)) if i not in errors and i not in large]
        with ThreadPoolExecutor(4) as pool:
            for i, error in zip(todo, pool.map(lambda i: _decode_error(decode_with, i), todo), strict=True):
                if error:
                    errors[i] = error
    short = [i for i, n in enumerate(table["num_frames"]) if 0 < n < span and i not in errors and i not in large]
    for path in index.missing:
        print(f"  MISSING     {path}")
    for i, error in errors.items():
        print(f"  UNREADABLE  {index.records[i].path}  ({error})")
    for i, reason in large.items():
        print(f"  TOO LARGE   {index.records[i].path}  ({reason})")
    for i in short:
        print(f"  TOO SHORT   {index.records[i].path}  ({table['num_frames'][i]} frames < one clip of {span}; loops)")
    print(f"  {len(index.missing)} missing, {len(errors)} unreadable, {len(short)} shorter than a clip, "
          f"{len(large)} over the decode budget")
    return len(index.missing) + len(errors) + len(large)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["prepare"]:
        prepare_tree(argv[1:])
    else:
        check(argv)


def check(argv: list[str]) -> None:
    """``data check RECIPE.yaml [--key=value ...] [--decode]``: exit 1 when a video cannot be used."""
    parser = argparse.ArgumentParser(prog="accel-slowfast data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["check", "prepare"])
    parser.add_argument("--decode", action="store_true", help="also decode the centre clip of every video")
    args, recipe_args = parser.parse_known_args(argv)
    from accel_slowfast.data.builders import build_indexes, check_decoder_loads  # the same readers as training
    from accel_slowfast.engine.accelerator import build_accelerator

    with exit_status(bad_input=(FileNotFoundError, ValueError)):  # a list file or a folder that is not there
        recipe = load_recipe(recipe_args, prog="accel-slowfast data check")
        if args.decode:  # the data check decodes on the CPU, whatever decoder_device says
            check_decoder_loads(recipe.data_args)
        train_index, val_index = build_indexes(recipe.data_args, build_accelerator(
            recipe.runtime_args, dataclasses.replace(recipe.logging_args, report_to="none")))
    span = recipe.clip_len * recipe.frame_interval
    bad = 0
    for name, index in (("train", train_index), ("val", val_index)):
        decoder = None
        if args.decode:
            decoder = ClipDataset(index, clip_len=recipe.clip_len, frame_interval=recipe.frame_interval,
                                  transforms=[lambda x: x], clip_sampling="centre", decoder=recipe.decoder)
        bad += check_split(name, index, span, decoder, clip_len=recipe.clip_len,
                           max_decode_pixels=recipe.max_decode_pixels)
    raise SystemExit(1 if bad else 0)


def prepare_tree(argv: list[str]) -> None:
    """``data prepare SRC OUT [...]`` (``data/prepare.py``): exit 1 when some videos failed."""
    encoders = available_encoders()
    examples = [line.strip() for line in prepare.__doc__.splitlines() if line.startswith("    accel-slowfast data")]
    parser = argparse.ArgumentParser(
        prog="accel-slowfast data prepare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a video tree once for fast training (videos re-encoded with a keyframe at least\n"
                    "every 16 frames, or mmaction2's frame folders) and write mmaction2's list files beside it.",
        epilog="\n".join(examples))
    parser.add_argument("src", help="the source tree: SRC/<Class>/<video> (UCF-101, HMDB51's videos, class folders)")
    parser.add_argument("out", help="the output tree, made if absent; the list files go beside it")
    parser.add_argument("--to", choices=sorted(prepare.LIST_KINDS), default="videos",
                        help="videos: re-encoded .mp4 (default); frames: OUT/<Class>/<name>/img_00001.jpg")
    parser.add_argument("--splits", help="UCF101's ucfTrainTestlist or HMDB51's split folder: one list per split and "
                                         "subset; without it SRC is class folders and OUT.txt lists every video")
    parser.add_argument("--short-side", type=int, default=256, help="the short side of the output; 0 keeps the size")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="videos converted at once "
                        "(default: one per core)")
    parser.add_argument("--encoder", choices=encoders, default=encoders[0] if encoders else None,
                        help="the encoder, from PyAV's own FFmpeg (a keyframe at least every 16 frames either way): "
                             "libx264 (H.264, CRF 23, as mmaction2's resize_videos.py), else mpeg4 (MPEG-4 part 2, "
                             f"q 3) where that FFmpeg lacks libx264; this one has: {', '.join(encoders) or 'neither'}")
    args = parser.parse_args(argv)
    if args.short_side < 0 or (args.to == "videos" and args.short_side % 2):
        parser.error(f"--short-side {args.short_side}: give 0 or a positive size (even for videos: 4:2:0 video)")
    if args.processes < 1:
        parser.error(f"--processes {args.processes}: give 1 or more")
    if args.to == "videos" and not encoders:
        parser.error("PyAV's FFmpeg has neither libx264 nor mpeg4; install PyAV's wheel from PyPI, or use --to frames")
    with exit_status():
        summary = prepare.prepare(args.src, args.out, to=args.to, splits=args.splits, short_side=args.short_side,
                                  processes=args.processes, encoder=args.encoder or "")
    lists = ", ".join(str(path) for path in summary.lists[:SHOWN]) + (" ..." if len(summary.lists) > SHOWN else "")
    failed = f"{len(summary.failed)} failed" + (f" (listed in {summary.failed_list})" if summary.failed else "")
    print(f"prepared {summary.converted} videos into {args.out} ({summary.skipped} done before), {failed}; "
          f"lists: {lists}")
    raise SystemExit(1 if summary.failed else 0)
