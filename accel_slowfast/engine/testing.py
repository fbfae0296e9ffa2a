"""``run_test(recipe, checkpoint)``: multi-view evaluation of a checkpoint, with the reports a paper table needs
(``accel-slowfast test``, ``commands/test.py``, is its command line).

    from accel_slowfast.engine.testing import run_test
    metrics = run_test(recipe, "work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth")

Writes beside the checkpoint (into the run's work_dir for ``work_dir/checkpoints/<name>``), or into
``out_dir``: ``test_metrics.json`` (``top1_acc``, ``top5_acc``,
``mean_class_accuracy``, ``num_videos`` scored, ``num_failed``, ``num_views``, and the
``mixed_precision`` and ``num_processes`` in force),
``test_predictions.csv`` (one row per video), ``test_per_class.csv``, ``test_confusion.png``, the
text log ``test_<time>.log`` and ``bad_videos.txt``. The recipe's own ``work_dir`` is not used: a
copied checkpoint's recipe names the run it came from.
Every process runs the views it is given; results are gathered once per view, so any number
of processes gives the same metrics. The scoring and the reports are ``evaluation/metrics.py``'s.
"""

import dataclasses
import json
from pathlib import Path

from accel_slowfast.checkpointing.load import load_weights
from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE, TEST_METRICS_FILE, reports_dir
from accel_slowfast.data.builders import build_indexes, build_loader, build_test_dataset
from accel_slowfast.engine.accelerator import build_accelerator, describe, setup_text_logger
from accel_slowfast.errors import CheckpointError
from accel_slowfast.evaluation.metrics import score_videos, write_reports
from accel_slowfast.models.builders import build_model
from accel_slowfast.recipe.recipe import Recipe


def run_test(recipe: Recipe, checkpoint: str | Path, out_dir: str | Path | None = None) -> dict:
    """Evaluate ``checkpoint`` on the recipe's validation split with the multi-view protocol; write
    the reports into ``out_dir`` (default: beside the checkpoint, ``checkpointing/names.reports_dir``)."""
    work_dir = Path(out_dir) if out_dir is not None else reports_dir(checkpoint)
    recipe = dataclasses.replace(recipe, work_dir=str(work_dir), report_to="none")  # (bad_videos.txt goes there)
    accelerator = build_accelerator(recipe.runtime_args, recipe.logging_args, recipe.gradient_accumulation_steps)
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
    _, index = build_indexes(recipe.data_args, accelerator)
    dataset = build_test_dataset(recipe.data_args, recipe.evaluation_args, recipe.short_side, index, accelerator,
                                 seed=recipe.seed, bad_video_log=work_dir / BAD_VIDEOS_FILE)
    loader = build_loader(dataset, recipe.data_args, accelerator, batch_size=recipe.batch_size, seed=recipe.seed,
                          train=False)
    model, loader = accelerator.prepare(model, loader)
    logger.info(describe(accelerator, recipe.runtime_args))
    logger.info("Testing %s on %d videos x %d views (%d clips x %d crops of %d px), %s averaging",
                checkpoint, len(index), dataset.views_per_video, recipe.num_clips, recipe.num_crops,
                recipe.test_crop_size, recipe.average_clips)
    results = score_videos(model, loader, accelerator, recipe.average_clips, progress="test")
    metrics = {**results.metrics(), "num_views": results.num_views, "checkpoint": str(checkpoint),
               "mixed_precision": accelerator.mixed_precision, "num_processes": accelerator.num_processes}
    if accelerator.is_main_process:
        written = write_reports(results, index, work_dir)
        (work_dir / TEST_METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        if metrics["num_failed"]:
            logger.warning("%d videos could not be decoded and were not scored; see %s",
                           metrics["num_failed"], work_dir / BAD_VIDEOS_FILE)
        logger.info("Test of %s: top1_acc %.4f, top5_acc %.4f, mean_class_accuracy %.4f on %d videos (%d not "
                    "scored), %d views", checkpoint, metrics["top1_acc"], metrics["top5_acc"],
                    metrics["mean_class_accuracy"], metrics["num_videos"], metrics["num_failed"], metrics["num_views"])
        logger.info("Wrote:\n%s", "\n".join(f"  {path}" for path in [work_dir / TEST_METRICS_FILE, *written]))
    accelerator.wait_for_everyone()
    return metrics
