"""Multi-view evaluation of a checkpoint (``test.py``), with the reports a paper table needs.

    accelerate launch test.py RECIPE.yaml --checkpoint=work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth

Writes into ``work_dir``: ``test_metrics.json`` (``top1_acc``, ``top5_acc``,
``mean_class_accuracy``, ``num_videos`` scored, ``num_failed``, ``num_views``),
``test_predictions.csv`` (one row per video), ``test_per_class.csv`` and ``test_confusion.png``.
Every process runs the views it is given; results are gathered once per view, so any number
of processes gives the same metrics.
"""

import csv
import json
import logging
from pathlib import Path

import numpy as np
from accelerate import Accelerator

from accel_slowfast.checkpoint import load_weights
from accel_slowfast.config import Recipe, RecipeError
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.errors import UserError
from accel_slowfast.evaluation import VideoScores, score_videos
from accel_slowfast.hooks import setup_text_logger
from accel_slowfast.models import build_model
from accel_slowfast.training import build_indexes, build_loader, build_test_dataset


def run_test(recipe: Recipe, checkpoint: str | Path) -> dict:
    """Evaluate ``checkpoint`` on the recipe's validation split with the multi-view protocol."""
    accelerator = Accelerator()
    work_dir = Path(recipe.work_dir)
    if accelerator.is_main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    logger = setup_text_logger(work_dir, accelerator.is_main_process, prefix="test")
    _, index = build_indexes(recipe, accelerator)
    dataset = build_test_dataset(recipe, index, accelerator)
    model = build_model(recipe.model, recipe.num_classes, mean=recipe.mean, std=recipe.std)
    report = load_weights(model, checkpoint)
    if report["missing"] or report["shape_mismatch"]:
        raise RecipeError(f"checkpoint {checkpoint} does not fit model '{recipe.model}' with "
                          f"{recipe.num_classes} classes: missing {report['missing']}, "
                          f"shape mismatch {report['shape_mismatch']}")
    model, loader = accelerator.prepare(model, build_loader(dataset, recipe, accelerator, train=False))
    logger.info("Testing %s on %d videos x %d views (%d clips x %d crops of %d px), %s averaging",
                checkpoint, len(index), dataset.views_per_video, recipe.num_clips, recipe.num_crops,
                recipe.test_crop_size, recipe.average_clips)
    results = score_videos(model, loader, accelerator, recipe.average_clips)
    metrics = {**results.metrics(), "num_views": results.num_views, "checkpoint": str(checkpoint)}
    if accelerator.is_main_process:
        write_reports(results, index, work_dir)
        (work_dir / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
        logger.info("Test: %s", json.dumps(metrics))
        if metrics["num_failed"]:
            logger.warning("%d videos could not be decoded and were not scored; see %s",
                           metrics["num_failed"], work_dir / "bad_videos.txt")
    accelerator.wait_for_everyone()
    return metrics


def write_reports(results: VideoScores, index: VideoIndex, work_dir: Path) -> None:
    """Per-video predictions, per-class accuracy and the confusion matrix of one test run."""
    classes = index.classes
    num_classes = results.scores.shape[1] if results.scores.size else len(classes)
    names = [classes[i] if i < len(classes) else str(i) for i in range(num_classes)]
    order = np.argsort(-results.scores, axis=1)[:, :5] if len(results.videos) else np.zeros((0, 5), int)
    with open(work_dir / "test_predictions.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["video", "label", "prediction", "score", "correct", "top5"])
        for row, video in enumerate(results.videos.tolist()):
            top = order[row]
            writer.writerow([index.records[video].path, names[results.labels[row]], names[top[0]],
                             f"{results.scores[row, top[0]]:.6f}", int(top[0] == results.labels[row]),
                             " ".join(names[k] for k in top)])
        for video in results.failed.tolist():
            writer.writerow([index.records[video].path, names[index.records[video].label], "", "", "", "FAILED"])
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # rows: true class
    if len(results.videos):
        np.add.at(confusion, (results.labels, order[:, 0]), 1)
    with open(work_dir / "test_per_class.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["class", "videos", "correct", "accuracy"])
        for k, name in enumerate(names):
            support = int(confusion[k].sum())
            accuracy = f"{confusion[k, k] / support:.4f}" if support else ""
            writer.writerow([name, support, int(confusion[k, k]), accuracy])
    plot_confusion(confusion, names, work_dir / "test_confusion.png")


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path) -> None:
    """Row-normalized confusion matrix (rows: true class) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    size = min(4 + 0.25 * len(names), 30)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=max(4, 10 - len(names) // 15))
    ax.set_yticks(range(len(names)), names, fontsize=max(4, 10 - len(names) // 15))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(names) <= 20:
        for (i, j), value in np.ndenumerate(confusion):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                        color="white" if normalized[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """``test.py`` entry point: ``[RECIPE.yaml] --checkpoint=PATH [--key=value ...]``."""
    import argparse
    import sys

    from accel_slowfast.config import load_recipe

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--checkpoint", required=False, default="")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        if not args.checkpoint and "--help" not in rest and "-h" not in rest:
            raise RecipeError("test.py needs --checkpoint=PATH (an epoch folder, a best_*.pth or any load_from file)")
        recipe = load_recipe(rest)
        run_test(recipe, args.checkpoint)
    except (UserError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


logging.getLogger("matplotlib").setLevel(logging.WARNING)
