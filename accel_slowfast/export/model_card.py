"""The ``README.md`` of an export folder: a Hugging Face model card (YAML front matter + Markdown).

    accel-slowfast export work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth exported/x   # writes it

It says what the model is (preset, classes, input clips), how it was trained (the recipe's key
settings), how well it did (what the run's work_dir recorded: the validation of the exported
epoch and the run's best from ``metrics.jsonl``, and ``test_metrics.json`` when ``test`` scored
this very checkpoint), and how to load it and predict.
"""

import json
import re
from pathlib import Path
from typing import Any

import yaml

from accel_slowfast.checkpointing.names import METRICS_FILE, TEST_METRICS_FILE
from accel_slowfast.models.presets import BACKBONES, PRESETS

TRAINING_KEYS = ("dataset", "max_epochs", "batch_size", "gradient_accumulation_steps", "optimizer", "lr",
                 "base_batch_size", "weight_decay", "lr_policy", "warmup", "warmup_epochs", "crop_size",
                 "mixed_precision", "ema", "seed")
METRICS = ("top1_acc", "top5_acc", "mean_class_accuracy")


def checkpoint_epoch(checkpoint: str | Path) -> int | None:
    """The epoch in a checkpoint's name (``epoch_10``, ``best_top1_acc_epoch_10.pth``); None for ``iter_N``."""
    match = re.search(r"(?:^|_)epoch_(\d+)", Path(checkpoint).name)
    return int(match.group(1)) if match else None


def run_results(work_dir: Path, checkpoint: str | Path) -> list[tuple[str, dict[str, float]]]:
    """``(what, {metric: value})`` rows from the run's ``metrics.jsonl`` and ``test_metrics.json``."""
    rows = []
    metrics_file = work_dir / METRICS_FILE
    records = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    evaluations = [r for r in records if r.get("mode") == "val" and "top1_acc" in r]
    epoch = checkpoint_epoch(checkpoint)
    own = [r for r in evaluations if r["epoch"] == epoch]
    if own:
        rows.append((f"validation after epoch {epoch} (this checkpoint), one centre clip per video", own[-1]))
    if evaluations:
        best = max(evaluations, key=lambda r: r["top1_acc"])
        rows.append((f"best validation of the run (epoch {best['epoch']} of {evaluations[-1]['epoch']})", best))
    test_file = work_dir / TEST_METRICS_FILE
    if test_file.exists():
        test = json.loads(test_file.read_text())
        if Path(test.get("checkpoint", "")).resolve() == Path(checkpoint).resolve():
            rows.append((f"multi-view test, {test['num_views'] // max(test['num_videos'], 1)} views per video", test))
    return rows


def model_card(config: dict[str, Any], recipe: dict[str, Any], results: list[tuple[str, dict[str, float]]],
               *, source: str, load_with: str, license: str) -> str:
    """The card's text.

    Args:
        config: the export's ``config.json`` (preset, classes, clip and view settings).
        recipe: the training recipe (``recipe.yaml``).
        results: ``run_results`` rows.
        source: the checkpoint's name, for the card's first paragraph.
        load_with: what ``load_model`` is given in the usage example (a Hub id or the folder).
        license: the weights' license, a Hub license identifier.
    """
    backbone = PRESETS[config["model"]].backbone
    name, builder = BACKBONES[backbone]
    pathways = "; it takes its two pathways from that clip itself" if backbone == "slowfast" else ""
    # transformers opens the folder (trust_remote_code: "custom_code"), so the Hub offers its pipeline and endpoints
    front = {"library_name": "transformers", "license": license, "pipeline_tag": "video-classification",
             "tags": ["video-classification", "action-recognition", backbone, "pytorchvideo", "accel_slowfast",
                      "custom_code", recipe["dataset"]]}
    classes = config["classes"]
    dataset = recipe["dataset"] + (f" (split {recipe['split']})" if recipe["dataset"] in ("ucf101", "hmdb51") else "")
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
        f"# {config['model']} on {dataset}", "",
        f"A {name} video classifier (the `{config['model']}` preset, built with pytorchvideo's `{builder}`) "
        f"for {len(classes)} classes, trained with accel_slowfast; exported from `{source}`.", "",
        "## Results", "",
    ]
    if results:
        lines += ["| evaluation | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        lines += [f"| {what} | " + " | ".join(f"{values[m]:.4f}" for m in METRICS) + " |" for what, values in results]
    else:
        lines.append("The run's work_dir recorded no evaluation.")
    settings = {key: recipe[key] for key in TRAINING_KEYS}
    settings["mixed_precision"] = settings["mixed_precision"] or "(the launcher's)"  # the recipe left it open
    if recipe.get("load_from"):
        settings["load_from"] = Path(recipe["load_from"]).name  # the file, not the trainer's folders
    lines += [
        "", "## Input", "",
        f"One clip of {config['clip_len']} RGB frames taken every {config['frame_interval']} frames, short side "
        f"resized to {config['short_side']} px; predictions average {config['num_clips']} clips x "
        f"{config['num_crops']} crops of {config['test_crop_size']} px ({config['average_clips']} averaging). The "
        f"model takes the clip as uint8 `(B, 3, T, H, W)` and normalizes it with mean {config['mean']} and std "
        f"{config['std']} (0-255 scale){pathways}.", "",
        "## Training", "",
        "| key | value |", "|---|---|", *(f"| {key} | {value} |" for key, value in settings.items()), "",
        f"## Classes ({len(classes)}, in label order)", "",
        ", ".join(f"`{name}`" for name in classes), "",
        "## Use", "",
        "```python",
        "from accel_slowfast.export.hub import load_model",
        "from accel_slowfast.commands.predict import predict",
        "",
        f'model, config = load_model("{load_with}")',
        'predict(model, config, "video.mp4")        # [(class name, probability), ...], the top 5',
        "```", "",
        "```bash",
        f"accel-slowfast predict video.mp4 --checkpoint={load_with}",
        "```", "",
        "With transformers alone (the folder's `hf_model.py` builds the network; torch, PyAV and pytorchvideo needed). "
        "The pipeline scores the centre clip and crop, as `predict` does with `num_clips=1, num_crops=1`:", "",
        "```python",
        "from transformers import AutoModelForVideoClassification, pipeline",
        "",
        f'pipeline("video-classification", model="{load_with}", trust_remote_code=True)("video.mp4")',
        f'model = AutoModelForVideoClassification.from_pretrained("{load_with}", trust_remote_code=True)',
        "```", "",
    ]
    return "\n".join(lines)
