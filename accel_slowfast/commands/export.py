"""``accel-slowfast export``: a checkpoint as a Hub-ready folder with a model card, or as ``model.onnx``.

    accel-slowfast export work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth exported/x [--push_to_hub you/name]
    accel-slowfast export CHECKPOINT exported/x --format onnx        # model.onnx, checked against PyTorch

What the folder holds and how ``load_model`` reads it: ``export/hub.py``; the ONNX file and its parity
check: ``export/onnx_file.py``. Exit status (``exits.py``): 2 for a checkpoint or folder that cannot be
used, 1 when the ONNX file disagrees with PyTorch or the push to the Hub fails.
"""

import argparse
import sys
from pathlib import Path

from accel_slowfast.commands.exits import CommandFailed, exit_status
from accel_slowfast.export import onnx_file
from accel_slowfast.export.hub import WRITTEN, export_model, load_model, push_to_hub


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="accel-slowfast export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="an epoch folder, a best_*.pth or any load_from file inside a work_dir")
    parser.add_argument("out_dir", help="the export folder to write")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default="", help="then upload it to this Hub model repo")
    parser.add_argument("--private", action="store_true", help="with --push_to_hub: create the repo private")
    parser.add_argument("--license", default="apache-2.0", help="the model card's license (default: apache-2.0)")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"write into out_dir even if it holds files (replacing its {WRITTEN}; with "
                             "--format onnx: its model.onnx)")
    parser.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                        help="safetensors (default): the folder transformers opens (weights, config, processor, code, "
                             f"card); onnx: model.onnx in out_dir, opset {onnx_file.OPSET}, kept only if onnxruntime "
                             "matches PyTorch (pip install 'accel_slowfast[onnx]')")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with exit_status(bad_input=(FileNotFoundError, RuntimeError), failed=(onnx_file.ParityError,)):
        if args.format == "onnx":
            out = _export_onnx(args.checkpoint, args.out_dir, args.overwrite)
        else:
            out = export_model(args.checkpoint, args.out_dir, repo_id=args.push_to_hub or None,
                               license=args.license, overwrite=args.overwrite)
            print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
        if args.push_to_hub:
            print(f"pushed to {_push(out, args.push_to_hub, args.private)}")


def _export_onnx(checkpoint: str, out_dir: str, overwrite: bool) -> Path:
    """``--format onnx``: ``out_dir/model.onnx``, its parity line printed."""
    onnx_file.check_installed()  # before loading anything: the missing extra is the first thing to fix
    path, parity = onnx_file.export_onnx(*load_model(checkpoint), out_dir, overwrite=overwrite)
    print(parity)
    print(f"wrote {path}: opset {onnx_file.OPSET}, input uint8 (batch, 3, T, H, W) normalized inside, dynamic batch")
    return path.parent


def _push(folder: Path, repo_id: str, private: bool) -> str:
    import httpx2  # huggingface_hub's HTTP client: it raises a failed connection as is, no OSError

    try:
        return push_to_hub(folder, repo_id, private=private)
    except (OSError, httpx2.TransportError) as error:  # not logged in, no rights, no network
        raise CommandFailed(f"pushing to {repo_id} failed: {str(error).splitlines()[0]}") from None
