"""A trained model as one ONNX file, kept only when onnxruntime gives PyTorch's logits:

    pip install -e ".[onnx]"
    accel-slowfast export work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth exported/x --format onnx

writes ``exported/x/model.onnx`` (beside an export folder's other files, if any), opset ``OPSET``:

- input ``clip``: uint8 RGB, 0-255, ``(batch, 3, clip_len, crop_size, crop_size)``, the batch
  dynamic. The normalization (the run's ``mean`` and ``std``) is inside the graph, as the model
  does it in PyTorch, so a runtime feeds decoded frames as they are.
- output ``logits``: ``(batch, num_classes)``, float32, before softmax.
- metadata (``session.get_modelmeta().custom_metadata_map``, all strings): ``classes`` (JSON),
  ``clip_len``, ``frame_interval``, ``short_side``, ``crop_size`` (the run's test crop), ``mean``,
  ``std`` (JSON), ``opset``, ``input``, ``parity``.

The graph comes from ``torch.onnx.export(..., dynamo=True)``, torch's default exporter (the
TorchScript one, ``dynamo=False``, exports this model as well but warns that it is deprecated);
it needs ``onnxscript``. SlowFast's two pathways are packed inside the model (a strided slice of
the clip), so the file has the one input. Before the file is kept, onnxruntime (CPU) and PyTorch
score the same real clips: the three test crops of one clip of a synthetic video rendered, encoded
and decoded here (``data/synthetic.py``) as ``predict`` decodes, at the run's clip settings. The
export is refused when the largest logit difference is over ``REL_TOLERANCE`` of the largest
PyTorch logit.
"""

import importlib.util
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from accel_slowfast.data import ClipDataset, VideoIndex, VideoRecord
from accel_slowfast.data.synthetic import CLASSES, SyntheticSpec, render, write_video
from accel_slowfast.data.views import view_transforms
from accel_slowfast.errors import UserError
from accel_slowfast.models.builders import SlowFast

# The opset torch's ONNX function library is written in (torch's default, 20, is a conversion of it) and the
# exporter's lowest: opened by the most runtimes (onnxruntime >= 1.14).
OPSET = 18
ONNX_FILE = "model.onnx"
REL_TOLERANCE = 1e-4
EXTRA = ("onnx", "onnxscript", "onnxruntime")
INPUT_DOC = "clip: uint8 RGB 0-255 (batch, 3, clip_len, crop_size, crop_size); normalized inside the graph"


class ParityError(Exception):
    """onnxruntime's logits are not PyTorch's: the file is not written (exit 1)."""


@dataclass(frozen=True)
class Parity:
    """The largest logit difference between onnxruntime and PyTorch on ``views`` clips."""

    max_abs: float
    max_logit: float
    views: int

    @property
    def relative(self) -> float:
        if self.max_logit == 0:
            return 0.0 if self.max_abs == 0 else math.inf
        return self.max_abs / self.max_logit

    def __str__(self) -> str:
        return (f"parity: onnxruntime (CPU) vs PyTorch on {self.views} clips of a decoded video: largest logit "
                f"difference {self.max_abs:.2e} ({self.relative:.2e} relative to the largest logit "
                f"{self.max_logit:.3g}; at most {REL_TOLERANCE:g} allowed)")


def check_installed() -> None:
    """Raise ``UserError`` (one line) naming the extra when a package of ``[onnx]`` is missing."""
    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"export --format onnx needs {', '.join(missing)}: pip install 'accel_slowfast[onnx]' "
                        "(or pip install -e '.[onnx]' in a checkout)")


def export_onnx(model: SlowFast, config: dict, out_dir: str | Path, *, overwrite: bool = False) -> tuple[Path, Parity]:
    """Write ``out_dir/model.onnx`` from ``model`` (as ``export.load_model`` returns it, with its config;
    the model is moved to the CPU).

    Raises:
        UserError: ``out_dir`` is a file, or already holds a ``model.onnx`` and not ``overwrite``.
        ParityError: onnxruntime's logits differ from PyTorch's by more than ``REL_TOLERANCE``.
    """
    check_installed()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"export: {out} is a file; give the folder to write {ONNX_FILE} into")
    if (out / ONNX_FILE).exists() and not overwrite:
        raise UserError(f"export: {out / ONNX_FILE} exists; choose another folder, or pass --overwrite to replace it")
    model = model.cpu().eval()
    clips = parity_clips(config)  # (views, 3, T, H, W) uint8
    program = torch.onnx.export(model, (clips,), dynamo=True, opset_version=OPSET, input_names=["clip"],
                                output_names=["logits"], dynamic_shapes=({0: "batch"},), verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    # written beside its final name and renamed once it passes: a refused export leaves nothing behind
    staged = out / f".{ONNX_FILE}.{os.getpid()}.tmp"
    try:
        program.save(staged, external_data=False)  # one file, the weights inside (protobuf's limit is 2 GB)
        parity = check_parity(model, staged, clips)
        if parity.relative > REL_TOLERANCE:
            raise ParityError(f"export: onnxruntime's logits differ from PyTorch's by {parity.max_abs:.2e} "
                              f"({parity.relative:.2e} relative, over the {REL_TOLERANCE:g} allowed) on "
                              f"{parity.views} decoded clips; {out / ONNX_FILE} not written")
        _write_metadata(staged, config, parity)
        os.replace(staged, out / ONNX_FILE)
    finally:
        staged.unlink(missing_ok=True)
    return out / ONNX_FILE, parity


def parity_clips(config: dict) -> torch.Tensor:
    """uint8 clips ``(3, 3, clip_len, crop, crop)``: the three crops of the first test clip, decoded as
    ``predict`` decodes them, of a synthetic video (rendered and encoded to a temporary file)."""
    spec = SyntheticSpec()
    rng = np.random.default_rng(spec.seed)
    background = rng.integers(90, 166, size=(spec.height, spec.width, 3), dtype=np.uint8)  # grain to encode
    frames = render(CLASSES[0], background, rng, spec)  # (T, H, W, 3) uint8: a square moving down
    with tempfile.TemporaryDirectory(prefix="accel_slowfast_onnx_") as folder:
        video = Path(folder) / "parity.avi"
        write_video(video, frames, spec.fps)
        index = VideoIndex([VideoRecord(video, 0)], [CLASSES[0]])
        index.probe(0)
        dataset = ClipDataset(index, clip_len=config["clip_len"], frame_interval=config["frame_interval"],
                              transforms=view_transforms(short_side=config["short_side"],
                                                         crop_size=config["test_crop_size"], num_crops=3),
                              clip_sampling="uniform", num_clips=1, decoder="pyav")
        return dataset.collate([dataset[i] for i in range(len(dataset))])["video"]


def check_parity(model: SlowFast, path: str | Path, clips: torch.Tensor) -> Parity:
    """Run ``clips`` through the ONNX file at ``path`` on onnxruntime's CPU provider and through ``model``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"clip": clips.numpy()})
    with torch.no_grad():
        reference = model(clips).numpy()
    return Parity(float(np.abs(ours - reference).max()), float(np.abs(reference).max()), len(clips))


def _write_metadata(path: Path, config: dict, parity: Parity) -> None:
    import onnx

    graph = onnx.load(path)
    values = {"classes": json.dumps(config["classes"]), "model": config["model"], "clip_len": config["clip_len"],
              "frame_interval": config["frame_interval"], "short_side": config["short_side"],
              "crop_size": config["test_crop_size"], "mean": json.dumps(list(config["mean"])),
              "std": json.dumps(list(config["std"])), "opset": OPSET, "input": INPUT_DOC, "parity": str(parity)}
    onnx.helper.set_model_props(graph, {key: str(value) for key, value in values.items()})
    onnx.save(graph, path)
