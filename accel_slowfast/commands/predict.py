"""Top-k labels of one video, averaged over the multi-view test protocol.

    accel-slowfast predict VIDEO --checkpoint=PATH [--top_k=5]
    accel-slowfast predict rawframes/Class/v_x --checkpoint=PATH   # a frame folder (img_00001.jpg ...)
    accel-slowfast predict big.mp4 --checkpoint=PATH --max_decode_pixels=300000000   # a 32-frame 4K clip

``PATH`` is an export folder (``export/hub.py``), its Hugging Face Hub id (``owner/name``)
or a training checkpoint inside its work_dir. A folder is read as frames (``data/frames.py``),
named by the run's ``filename_tmpl`` and ``start_index`` (mmaction2's defaults for a run that
trained on videos) unless ``--filename_tmpl`` / ``--start_index`` say otherwise. A video whose clip is
over the decode budget (``max_decode_pixels``: the run's, else the default; ``data/probe.py``) is
refused from its header, in one line, before any frame is decoded. In a notebook::

    model, config = load_model("exported/x")
    predict(model, config, "v_ApplyEyeMakeup_g01_c01.avi")   # [("ApplyEyeMakeup", 0.93), ...]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from accel_slowfast.commands.exits import exit_status
from accel_slowfast.data import ClipDataset, VideoIndex, VideoRecord
from accel_slowfast.data.frames import FILENAME_TMPL, START_INDEX, FrameFolderIndex
from accel_slowfast.data.probe import decode_budget_error
from accel_slowfast.data.views import view_transforms
from accel_slowfast.engine.accelerator import build_accelerator
from accel_slowfast.evaluation.metrics import average_views, softmax
from accel_slowfast.export.hub import load_model
from accel_slowfast.models.classifier import VideoClassifier
from accel_slowfast.recipe.data import DEFAULT_DECODER, DataArgs


@torch.no_grad()
def predict(model: VideoClassifier, config: dict, video: str | Path, top_k: int = 5, batch_size: int = 8
            ) -> list[tuple[str, float]]:
    """``[(class name, probability), ...]`` of the ``top_k`` classes for ``video`` (a file or a frame folder).

    Raises:
        RuntimeError: the video cannot be read, or its clips are over ``config``'s ``max_decode_pixels``.
    """
    index = VideoIndex([VideoRecord(Path(video), 0)], config["classes"])
    if Path(video).is_dir():
        index = FrameFolderIndex.of(index, filename_tmpl=config.get("filename_tmpl", FILENAME_TMPL),
                                    start_index=config.get("start_index", START_INDEX))
    row = index.probe(0)
    max_decode_pixels = config.get("max_decode_pixels", DataArgs.max_decode_pixels)
    error = row["error"] or decode_budget_error(config["clip_len"], row["height"], row["width"], max_decode_pixels)
    if error:
        raise RuntimeError(f"cannot read {video}: {error}")
    dataset = ClipDataset(
        index,
        clip_len=config["clip_len"], frame_interval=config["frame_interval"],
        transforms=view_transforms(short_side=config["short_side"], crop_size=config["test_crop_size"],
                                   num_crops=config["num_crops"]),
        clip_sampling="uniform", num_clips=config["num_clips"], decoder=config.get("decoder", DEFAULT_DECODER),
    )
    try:  # decoded here once (the views below reuse it), so a file that fails is named with its own error
        dataset._clips(0, dataset._rng(0))
    except Exception as error:  # noqa: BLE001 - whatever the decoder raised is the reason
        raise RuntimeError(f"cannot decode {video}: {type(error).__name__}: {error}") from None
    device = next(model.parameters()).device
    logits = []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate):
        logits.append(model(batch["video"].to(device)).float().cpu())
    average_clips = config.get("average_clips", "prob")
    scores = average_views(torch.cat(logits).numpy(), average_clips)  # (num_classes,), as the test command's
    probs = scores if average_clips == "prob" else softmax(scores)  # "score" averages logits: shown as probabilities
    top = np.argsort(-probs, kind="stable")[:top_k]
    return [(config["classes"][k], float(probs[k])) for k in top]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="accel-slowfast predict", description=__doc__.split("\n")[0])
    parser.add_argument("video", help="a video file, or a folder of its frames")
    parser.add_argument("--checkpoint", required=True,
                        help="an export folder, its Hub id (owner/name) or a training checkpoint")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--filename_tmpl", help="a frame folder's file names (default: the run's, else "
                        f"{FILENAME_TMPL})")
    parser.add_argument("--start_index", type=int, help=f"a frame folder's first number (default: the run's, else "
                        f"{START_INDEX})")
    parser.add_argument("--max_decode_pixels", type=int, help="the decode budget of a clip, frames x height x "
                        f"width (default: the run's, else {DataArgs.max_decode_pixels:,})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with exit_status(bad_input=(FileNotFoundError, RuntimeError)):  # a file that is not there, a video not read
        model, config = load_model(args.checkpoint)
        config.update({key: getattr(args, key) for key in ("filename_tmpl", "start_index", "max_decode_pixels")
                       if getattr(args, key) is not None})
        # the device and precision every command gets (accelerate launch --mixed_precision bf16 ...)
        model = build_accelerator().prepare_model(model, evaluation_mode=True)
        results = predict(model, config, args.video, args.top_k)
    width = max(len(name) for name, _ in results)
    for name, prob in results:
        print(f"{name:<{width}}  {prob:.4f}")

