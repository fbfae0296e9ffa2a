"""Loading weights into a model (``load_from``): non-strict, reported, never arbitrary unpickling."""

import logging
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger("accel_slowfast")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, from any of the layouts we know.

    Accepts a plain state dict, ``{"state_dict": ...}`` (ours, mmcv), ``{"model_state": ...}``
    (pytorchvideo zoo) and an Accelerate ``save_state`` folder (its ``model.safetensors`` or
    ``pytorch_model.bin``). Files are read with ``weights_only=True``.
    """
    path = Path(path)
    if path.is_dir():
        safetensors = path / "model.safetensors"
        if safetensors.exists():
            from safetensors.torch import load_file

            return load_file(str(safetensors))
        path = path / "pytorch_model.bin"
    if not path.exists():
        raise FileNotFoundError(f"load_from: {path} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types for refused pickles
        raise RuntimeError(f"load_from: {path} is not a plain weights file that loads with weights_only=True "
                           f"({error}); re-save it as a state dict") from error
    for key in ("state_dict", "model_state", "model"):
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
            break
    state = {k.removeprefix("module."): v for k, v in content.items() if torch.is_tensor(v)}
    if not state:
        raise RuntimeError(f"load_from: {path} holds no tensors")
    return state


def load_weights(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load matching weights from ``path`` into ``model`` and report the rest.

    Keys whose shape differs (e.g. a 400-class head loaded into a 101-class model) are
    skipped and keep their fresh initialisation. Returns ``missing``, ``unexpected`` and
    ``shape_mismatch`` key lists, all logged.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in mismatched:
        logger.warning("load_from: skip %s: checkpoint shape %s, model shape %s",
                       key, tuple(state[key].shape), tuple(own[key].shape))
        del state[key]
    result = model.load_state_dict(state, strict=False)
    report = {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys),
              "shape_mismatch": mismatched}
    logger.info("load_from %s: loaded %d tensors; missing %s; unexpected %s; shape mismatch %s",
                path, len(state) - len(report["unexpected"]), report["missing"], report["unexpected"], mismatched)
    return report
