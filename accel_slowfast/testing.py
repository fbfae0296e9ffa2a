"""Multi-view evaluation of a checkpoint (``test.py``), with the reports a paper table needs.

    accelerate launch test.py --checkpoint=work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth   # the run's recipe
    accelerate launch test.py RECIPE.yaml --checkpoint=PATH --num_clips=2                      # another recipe

Writes into ``work_dir``: ``test_metrics.json`` (``top1_acc``, ``top5_acc``,
``mean_class_accuracy``, ``num_videos`` scored, ``num_failed``, ``num_views``),
``test_predictions.csv`` (one row per video), ``test_per_class.csv`` and ``test_confusion.png``.
Every process runs the views it is given; results are gathered once per view, so any number
of processes gives the same metrics.
"""

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from accel_slowfast.checkpoint import load_weights
from accel_slowfast.config import Recipe
from accel_slowfast.data.builders import build_indexes, build_loader, build_test_dataset
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.errors import CheckpointError, UserError
from accel_slowfast.evaluation import VideoScores, score_videos
from accel_slowfast.models import build_model
from accel_slowfast.runtime import build_accelerator, describe, setup_text_logger
from accel_slowfast.workdir import BAD_VIDEOS_FILE


def run_test(recipe: Recipe, checkpoint: str | Path) -> dict:
    """Evaluate ``checkpoint`` on the recipe's validation split with the multi-view protocol."""
    accelerator = build_accelerator(dataclasses.replace(recipe, report_to="none"))
    work_dir = Path(recipe.work_dir)
    if accelerator.is_main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    logger = setup_text_logger(work_dir, accelerator.is_main_process, prefix="test")
    model = build_model(recipe.model, recipe.num_classes, mean=recipe.mean, std=recipe.std)
    report = load_weights(model, checkpoint)  # verified and loaded before any data work
    if report["missing"] or report["shape_mismatch"]:
        raise CheckpointError(f"checkpoint {checkpoint} does not fit model '{recipe.model}' with "
                              f"{recipe.num_classes} classes: missing {report['missing']}, "
                              f"shape mismatch {report['shape_mismatch']}")
    _, index = build_indexes(recipe, accelerator)
    dataset = build_test_dataset(recipe, index, accelerator)
    model, loader = accelerator.prepare(model, build_loader(dataset, recipe, accelerator, train=False))
    logger.info(describe(accelerator, recipe))
    logger.info("Testing %s on %d videos x %d views (%d clips x %d crops of %d px), %s averaging",
                checkpoint, len(index), dataset.views_per_video, recipe.num_clips, recipe.num_crops,
                recipe.test_crop_size, recipe.average_clips)
    results = score_videos(model, loader, accelerator, recipe.average_clips, progress="test")
    metrics = {**results.metrics(), "num_views": results.num_views, "checkpoint": str(checkpoint)}
    if accelerator.is_main_process:
        written = write_reports(results, index, work_dir)
        (work_dir / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
        if metrics["num_failed"]:
            logger.warning("%d videos could not be decoded and were not scored; see %s",
                           metrics["num_failed"], work_dir / BAD_VIDEOS_FILE)
        logger.info("Test of %s: top1_acc %.4f, top5_acc %.4f, mean_class_accuracy %.4f on %d videos (%d not "
                    "scored), %d views", checkpoint, metrics["top1_acc"], metrics["top5_acc"],
                    metrics["mean_class_accuracy"], metrics["num_videos"], metrics["num_failed"], metrics["num_views"])
        logger.info("Wrote:\n%s", "\n".join(f"  {path}" for path in [work_dir / "test_metrics.json", *written]))
    accelerator.wait_for_everyone()
    return metrics


def write_reports(results: VideoScores, index: VideoIndex, work_dir: Path) -> list[Path]:
    """Per-video predictions, per-class accuracy and the confusion matrix of one test run; returns
    the files written."""
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
    return [work_dir / name for name in ("test_predictions.csv", "test_per_class.csv", "test_confusion.png")]


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
    """``accel-slowfast test`` / ``test.py``: ``[RECIPE.yaml] --checkpoint=PATH [--key=value ...]``.

    Without a recipe file the checkpoint's own run decides: its ``recipe.yaml`` (the copy inside
    a checkpoint folder, else the run's work_dir) is the base, and command-line keys still win.
    """
    import sys

    from accel_slowfast.cli import test_arguments

    try:
        checkpoint, recipe = test_arguments(sys.argv[1:] if argv is None else argv)
        run_test(recipe, checkpoint)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


logging.getLogger("matplotlib").setLevel(logging.WARNING)

if __name__ == "__main__":  # accelerate launch -m accel_slowfast.testing
    main()
