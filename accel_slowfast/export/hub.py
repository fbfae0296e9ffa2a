"""A trained model as a self-contained, Hub-ready folder, loadable with one call:

    export_model("work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth", "exported/x")   # = accel-slowfast export
    model, config = load_model("exported/x")      # or a Hub id: load_model("you/name")
    predict(model, config, "clip.avi")            # accel_slowfast.commands.predict

The folder is one transformers opens (``transformers_files.py`` writes it: ``config.json``, ``model.safetensors``,
``video_preprocessor_config.json`` and ``hf_model.py``, the code ``trust_remote_code`` runs), plus
``README.md``, a Hugging Face model card (``model_card.py``). ``config.json`` also holds the preset,
classes, and the clip / resize / normalization settings ``predict`` needs. A folder that already holds
files is written into only with ``--overwrite`` (which replaces those files and leaves the others).
``push_to_hub`` uploads it; ``load_model`` reads it or the previous layout (a flat ``config.json``),
and downloads a Hub id once into the Hugging Face cache and reads it from there afterwards
(``HF_HUB_OFFLINE=1``: the cache only).

``--format onnx`` writes ``model.onnx`` into the folder instead, checked against PyTorch
(``onnx_file.py``; the ``[onnx]`` extra). The command line is ``commands/export.py``.
"""

import json
import re
from pathlib import Path

import yaml

from accel_slowfast.checkpointing.load import load_weights
from accel_slowfast.checkpointing.names import CLASSES_FILE, METRICS_FILE, RECIPE_FILE, find_run_file
from accel_slowfast.errors import CheckpointError, UserError
from accel_slowfast.export.model_card import model_card, run_results
from accel_slowfast.export.transformers_files import CONFIG_FILE, HF_FILES, WEIGHTS_FILE, read_export, write_hf_folder
from accel_slowfast.models.builders import build_model
from accel_slowfast.models.classifier import VideoClassifier

CONFIG_KEYS = ("model", "num_classes", "clip_len", "frame_interval", "short_side", "crop_size", "test_crop_size",
               "num_clips", "num_crops", "average_clips", "mean", "std", "decoder")
# how predict names a frame folder's files, and its decode budget (absent from older runs' recipes)
OPTIONAL_KEYS = ("filename_tmpl", "start_index", "max_decode_pixels")
CARD_FILE = "README.md"
WRITTEN = ", ".join(HF_FILES) + f" and {CARD_FILE}"  # the files an export writes
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name


def run_config(checkpoint: str | Path) -> dict:
    """What ``load_model``/``predict`` need, read from the checkpoint's recipe and its run's classes."""
    recipe = yaml.safe_load(find_run_file(checkpoint, RECIPE_FILE).read_text())
    config = {key: recipe[key] for key in CONFIG_KEYS}
    config.update({key: recipe[key] for key in OPTIONAL_KEYS if key in recipe})
    try:
        config["classes"] = json.loads(find_run_file(checkpoint, CLASSES_FILE).read_text())
    except FileNotFoundError:
        config["classes"] = [str(i) for i in range(config["num_classes"])]
    return config


def export_model(checkpoint: str | Path, out_dir: str | Path, *, repo_id: str | None = None,
                 license: str = "apache-2.0", overwrite: bool = False) -> Path:
    """Write ``checkpoint`` (any file ``load_from`` reads, inside a work_dir) as an export folder.

    Args:
        checkpoint: an epoch folder, a ``best_*.pth`` or any ``load_from`` file inside a work_dir.
        out_dir: the folder to write (created if needed).
        repo_id: the Hub id the card's usage example loads; None: ``out_dir``.
        license: the weights' license in the card (a Hub identifier); check the dataset's terms.
        overwrite: write into ``out_dir`` even if it holds files (else ``UserError``).
    """
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    config = run_config(checkpoint)
    model = _model_from_checkpoint(config, checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    write_hf_folder(model.state_dict(), config, out)
    recipe = yaml.safe_load(find_run_file(checkpoint, RECIPE_FILE).read_text())
    results = run_results(_work_dir(checkpoint), checkpoint)
    (out / CARD_FILE).write_text(model_card(config, recipe, results, source=Path(checkpoint).name,
                                            load_with=repo_id or str(out_dir), license=license))
    return out


def _check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a file, or a folder holding files (unless ``overwrite``), as the export folder."""
    if out.exists() and not out.is_dir():
        raise UserError(f"export: {out} is a file; give the folder to write the export into")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise UserError(f"export: {out} is not empty ({shown}); choose a new or empty folder, or pass --overwrite to "
                        f"replace its {WRITTEN}")


def push_to_hub(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Create the Hub model repo ``repo_id`` if needed and upload an export folder; return the commit URL.

    Uses the token of ``hf auth login`` (or ``HF_TOKEN``). Errors are ``huggingface_hub``'s.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                               commit_message=f"Upload {Path(folder).name} (accel_slowfast export)")
    return commit.commit_url


def load_model(path: str | Path) -> tuple[VideoClassifier, dict]:
    """The model (eval mode) and its config from an export folder, a Hub id (``owner/name``) or a
    training checkpoint."""
    path = Path(path)
    if not path.exists() and HUB_ID.fullmatch(str(path)):
        path = _download(str(path))
    if (path / CONFIG_FILE).exists() and (path / WEIGHTS_FILE).exists():
        state, config = read_export(path)
        model = _build(config)
        model.load_state_dict(state)
        return model.eval(), config
    config = run_config(path)
    return _model_from_checkpoint(config, path).eval(), config


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except OSError as error:  # every huggingface_hub error: not found, gated, offline without a cached copy, ...
        raise CheckpointError(f"{repo_id} is not a local path, and the Hugging Face Hub did not give it: "
                              f"{str(error).splitlines()[0]}") from None


def _work_dir(checkpoint: str | Path) -> Path:
    """The run's folder: the nearest one at or above ``checkpoint`` with a ``metrics.jsonl`` (else a recipe)."""
    try:
        return find_run_file(checkpoint, METRICS_FILE).parent
    except FileNotFoundError:
        return find_run_file(checkpoint, RECIPE_FILE).parent


def _build(config: dict) -> VideoClassifier:
    return build_model(config["model"], config["num_classes"], mean=config["mean"], std=config["std"])


def _model_from_checkpoint(config: dict, checkpoint: str | Path) -> VideoClassifier:
    """The config's model with every weight from ``checkpoint`` (any layout ``load_from`` reads)."""
    model = _build(config)
    report = load_weights(model, checkpoint)
    if report["missing"] or report["shape_mismatch"]:
        raise RuntimeError(f"{checkpoint} does not fit {config['model']}: {report}")
    return model

