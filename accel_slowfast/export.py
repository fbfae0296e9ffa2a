"""A trained model as a self-contained folder, loadable with one call:

    export_model("work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth", "exported/x")
    model, config = load_model("exported/x")      # model in eval mode; config["classes"] = names

The folder holds ``model.safetensors``, ``config.json`` (preset, classes, and the clip / resize /
normalization settings ``predict`` needs). Push it to the Hugging Face Hub with
``huggingface_hub.upload_folder(repo_id="you/slowfast-ucf101", folder_path="exported/x")``.
"""

import json
from pathlib import Path

import yaml
from safetensors.torch import load_file, save_file

from accel_slowfast.checkpoint import load_weights
from accel_slowfast.models import SlowFast, build_model
from accel_slowfast.workdir import CLASSES_FILE, RECIPE_FILE, find_run_file

CONFIG_KEYS = ("model", "num_classes", "clip_len", "frame_interval", "short_side", "crop_size", "test_crop_size",
               "num_clips", "num_crops", "average_clips", "mean", "std", "decoder")


def run_config(checkpoint: str | Path) -> dict:
    """What ``load_model``/``predict`` need, read from the checkpoint's recipe and its run's classes."""
    recipe = yaml.safe_load(find_run_file(checkpoint, RECIPE_FILE).read_text())
    config = {key: recipe[key] for key in CONFIG_KEYS}
    try:
        config["classes"] = json.loads(find_run_file(checkpoint, CLASSES_FILE).read_text())
    except FileNotFoundError:
        config["classes"] = [str(i) for i in range(config["num_classes"])]
    return config


def export_model(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write ``checkpoint`` (any file ``load_from`` reads, inside a work_dir) as an export folder."""
    config = run_config(checkpoint)
    model = _model_from_checkpoint(config, checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def load_model(path: str | Path) -> tuple[SlowFast, dict]:
    """The model (eval mode) and its config from an export folder, or from a training checkpoint."""
    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        config = json.loads((path / "config.json").read_text())
        model = _build(config)
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        return model.eval(), config
    config = run_config(path)
    return _model_from_checkpoint(config, path).eval(), config


def _build(config: dict) -> SlowFast:
    return build_model(config["model"], config["num_classes"], mean=config["mean"], std=config["std"])


def _model_from_checkpoint(config: dict, checkpoint: str | Path) -> SlowFast:
    """The config's model with every weight from ``checkpoint`` (any layout ``load_from`` reads)."""
    model = _build(config)
    report = load_weights(model, checkpoint)
    if report["missing"] or report["shape_mismatch"]:
        raise RuntimeError(f"{checkpoint} does not fit {config['model']}: {report}")
    return model
