"""Loading weights into a model (``load_from``): verified, non-strict, reported, never arbitrary
unpickling. Every failure is a one-line ``CheckpointError`` naming the file."""

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from torch import nn

from accel_slowfast.checkpointing.manifest import verify_checkpoint
from accel_slowfast.checkpointing.names import META_FILE
from accel_slowfast.errors import CheckpointError
from accel_slowfast.models.mmaction2 import is_mmaction2_state_dict, is_other_mmaction2_state_dict, mmaction2_to_ours

logger = logging.getLogger("accel_slowfast")

# Wrappers around the tensors, tried in this order: ours and mmcv/mmengine, pytorchvideo zoo, others.
STATE_DICT_KEYS = ("state_dict", "model_state", "model")


def _extra_safe_globals() -> list[Any]:
    """Value types that ``weights_only`` refuses by default but that build no arbitrary objects.

    mmcv/mmaction2 checkpoints keep bookkeeping in ``meta`` (e.g. a numpy float best score);
    these allow such files without allowing any class with code of its own. numpy scalars are
    rebuilt from a dtype and raw bytes; files written with numpy 1.x name ``numpy.core``.
    """
    allowed: list[Any] = [frozenset, slice, range]
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch's usual installs
        return allowed
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    number_dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"}  # bool, ints, floats, complex
    return allowed + [np.dtype, *number_dtypes, (scalar, "numpy.core.multiarray.scalar"),
                      (scalar, "numpy._core.multiarray.scalar")]


def safe_globals() -> list[Any]:
    """Every type a ``weights_only`` load of ours accepts: ``_extra_safe_globals`` and Accelerate's
    (numpy arrays and ``codecs.encode``, which its random-state files pickle)."""
    from accelerate.utils.other import TORCH_SAFE_GLOBALS

    return _extra_safe_globals() + list(TORCH_SAFE_GLOBALS)


def unsafe_globals(path: Path) -> list[str]:
    """The classes and functions a ``torch.save`` file names beyond ``safe_globals()``, read from its
    pickle without running it; ``CheckpointError`` when it is not a ``torch.save`` file at all."""
    with torch.serialization.safe_globals(safe_globals()):
        try:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception as error:  # noqa: BLE001 - not a zip, no data.pkl, a broken pickle: one line
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CheckpointError(f"{path} is not a torch.save file ({first})") from None


def load_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with a few plain value types allowed.

    Raises ``CheckpointError`` (one line) when the file is missing, damaged or truncated, or
    pickles anything else (a class of some library, a function): unpickling that could run
    arbitrary code, so the message says how to re-save its tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"load_from: {path} does not exist" if not path.exists() else
                              f"load_from: {path} is a folder without model.safetensors or pytorch_model.bin")
    with torch.serialization.safe_globals(_extra_safe_globals()):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch raises several types for refused pickles
            refused = error
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)  # beyond the allowed ones
        except Exception:  # noqa: BLE001 - not a readable zip checkpoint
            unsafe = None
    if not unsafe:
        first = (str(refused).strip().splitlines() or [type(refused).__name__])[0]
        raise CheckpointError(f"load_from: {path} does not read as a torch checkpoint: it is damaged, truncated or "
                              f"not a checkpoint ({first})") from None
    raise CheckpointError(
        f"load_from: {path} does not load with weights_only=True (it pickles {unsafe}); we never unpickle arbitrary "
        "objects. If you trust the file, re-save its tensors only, e.g. python -c \"import torch; "
        f"c = torch.load('{path}', weights_only=False); torch.save({{'state_dict': c['state_dict']}}, "
        "'weights.pth')\"") from None


def extract_state_dict(content: Any, path: str | Path = "") -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint, unwrapped from ``STATE_DICT_KEYS`` and ``module.``."""
    for key in STATE_DICT_KEYS:
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
            break
    if not isinstance(content, dict):
        raise CheckpointError(f"load_from: {path} holds a {type(content).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in content.items() if torch.is_tensor(v)}
    if not state:
        raise CheckpointError(f"load_from: {path} holds no tensors")
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, from any of the layouts we know, in our key names.

    Accepts a plain state dict, ``{"state_dict": ...}`` (ours, mmcv/mmengine), ``{"model_state":
    ...}`` (pytorchvideo zoo), an Accelerate ``save_state`` folder (its ``model.safetensors`` or
    ``pytorch_model.bin``) and mmaction2 SlowFast checkpoints (``backbone.slow_path...`` keys),
    which are converted on the fly (``accel_slowfast.models.mmaction2``); mmaction2 checkpoints of other
    backbones (its X3D's ``backbone.conv1_s...``) are refused (``CheckpointError``). Files are read
    with ``weights_only=True``.
    """
    path = Path(path)
    if path.is_dir():
        if (path / META_FILE).exists():  # one of our checkpoint folders: its files must be intact
            try:
                verify_checkpoint(path)
            except CheckpointError as error:
                raise CheckpointError(f"load_from: {error}") from None
        safetensors = path / "model.safetensors"
        if safetensors.exists():
            try:
                return load_safetensors(str(safetensors))
            except SafetensorError as error:
                raise CheckpointError(f"load_from: {safetensors} is damaged or truncated ({error})") from None
        path = path / "pytorch_model.bin"
    state = extract_state_dict(load_file(path), path)
    if is_mmaction2_state_dict(state):
        state, dropped = mmaction2_to_ours(state)
        logger.info("load_from: %s is an mmaction2 checkpoint; converted %d tensors to our names", path, len(state))
        if dropped:
            logger.warning("load_from: mmaction2 keys without a counterpart, not loaded: %s", dropped)
    elif is_other_mmaction2_state_dict(state):
        raise CheckpointError(f"load_from: {path} is an mmaction2 checkpoint of another backbone than SlowFast "
                              "(no 'backbone.slow_path.*' keys); only SlowFast ones convert. For X3D, start from "
                              "pytorchvideo's zoo weights (X3D_XS.pyth, X3D_S.pyth, X3D_M.pyth)")
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
