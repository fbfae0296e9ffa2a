"""What a run shows in Weights & Biases and TensorBoard (``report_to``: wandb, tensorboard, all).

    accelerate launch train.py --report_to=wandb --wandb_project=slowfast --run_name=r50_split1
    WANDB_MODE=offline accelerate launch train.py --report_to=all     # no account: sync later

Accelerate owns the trackers (``Accelerator(log_with=...)``, ``init_trackers``, ``log``); this
module chooses them, starts them with the resolved recipe, and adds what scalars cannot show:

============================ ======================================================== =========
what                         when, where                                              trackers
============================ ======================================================== =========
resolved recipe              run config, at start                                     both
``train/loss, lr, grad_norm, every ``log_interval`` iterations, at the global          both
time, data_time``            iteration (``LoggerHook``)
``val/top1_acc, ...``        after each evaluation, at the same global iteration      both
``val/confusion_matrix``     after each evaluation (wandb chart; TensorBoard image)   both
``val/per_class``            per-class accuracy table (TensorBoard: markdown text)    both
``val/mistakes``             misclassified validation videos                          wandb
``val/clips``                ``log_val_clips`` validation clips, true and predicted   wandb
``best/<metric>, epoch``      the best evaluation, at the end (wandb's summary of     both
                             ``val/*`` accuracies holds their maximum too)
``model-<run id>`` artifact  the best checkpoint + recipe.yaml + classes.json, at end wandb
============================ ======================================================== =========

Every value is logged at ``step = runner.iter`` (the global iteration), never the epoch: wandb
drops steps that go backwards. A resumed run (``resume_from``) continues the same wandb run: its
id is kept in ``<work_dir>/wandb_run_id.txt`` and passed as ``wandb.init(id=..., resume="allow")``;
a fresh run in a used work_dir starts a new wandb run. wandb files go to ``<work_dir>/wandb``
unless ``WANDB_DIR`` is set; TensorBoard's event files to ``<work_dir>/tensorboard/``, one run
whose HParams tab holds the recipe (``tensorboard --logdir work_dirs`` lists one run per work_dir).
"""

import io
import os
import secrets
import string
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker, TensorBoardTracker

from accel_slowfast.checkpointing.names import (
    CLASSES_FILE,
    RECIPE_FILE,
    RUN_ID_FILE,
    TENSORBOARD_DIR,
    VAL_CONFUSION_FILE,
)
from accel_slowfast.evaluation.hooks import EvalHook
from accel_slowfast.evaluation.metrics import class_names, confusion_matrix, per_class_accuracy, plot_confusion
from accel_slowfast.recipe.run import LoggingArgs

VAL_METRICS = ("val/top1_acc", "val/top5_acc", "val/mean_class_accuracy")  # beside the recipe in the HParams tab
MAX_MISTAKES = 200  # rows of the val/mistakes table
ACCURACY_METRICS = ("top1_acc", "top5_acc", "mean_class_accuracy")


def build_trackers(logs: LoggingArgs, work_dir: str) -> list[str | GeneralTracker]:
    """``Accelerator(log_with=...)``: wandb by name; TensorBoard as a tracker writing to
    ``<work_dir>/tensorboard`` (Accelerate's would write to ``<work_dir>/<project name>``)."""
    return [TensorBoardTracker(TENSORBOARD_DIR, work_dir) if name == "tensorboard" else name
            for name in logs.trackers]


def wandb_run_id(work_dir: Path, resumed: bool) -> str:
    """The stored run id when resuming, else a new one (stored for the next resume)."""
    path = Path(work_dir) / RUN_ID_FILE
    if resumed and path.exists():
        return path.read_text().strip()
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # wandb's id alphabet
    path.write_text(run_id + "\n")
    return run_id


def init_trackers(accelerator: Accelerator, logs: LoggingArgs, recipe: dict[str, Any], work_dir: Path,
                  resumed: bool) -> None:
    """Start the trackers of ``logs.report_to`` and send them the resolved ``recipe`` (its ``to_dict``),
    with the precision and the process count in force (main process only)."""
    names = logs.trackers
    if not names or not accelerator.is_main_process:
        return
    init_kwargs: dict[str, dict[str, Any]] = {}
    if "wandb" in names:
        wandb_kwargs: dict[str, Any] = {"id": wandb_run_id(work_dir, resumed), "resume": "allow",
                                        "name": logs.run_name or work_dir.name}
        if logs.wandb_entity:
            wandb_kwargs["entity"] = logs.wandb_entity
        if logs.wandb_tags:
            wandb_kwargs["tags"] = list(logs.wandb_tags)
        if not os.environ.get("WANDB_DIR"):
            wandb_kwargs["dir"] = str(work_dir)
        init_kwargs["wandb"] = wandb_kwargs
    accelerator.init_trackers(logs.wandb_project, init_kwargs=init_kwargs)
    # what ran: the precision in force (the recipe may leave it to the launcher) and the processes
    config = {**recipe, "mixed_precision": accelerator.mixed_precision,
              "num_processes": accelerator.num_processes}
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            store_hparams(tracker.tracker, config)
        else:
            tracker.store_init_configuration(config)
            for metric in ACCURACY_METRICS:  # the run's summary shows the best value, not the last
                tracker.tracker.define_metric(f"val/{metric}", summary="max")


def store_hparams(writer, config: dict[str, Any]) -> None:
    """The recipe in TensorBoard's HParams tab, in the run's own event file. Accelerate's
    ``store_init_configuration`` (``SummaryWriter.add_hparams``) would start a second, timestamped
    run for it, and write a timestamped ``hparams.yml`` folder (``recipe.yaml`` has it already)."""
    from torch.utils.tensorboard.summary import hparams

    values = {key: str(value) if isinstance(value, list) else value for key, value in config.items()}  # no lists
    for summary in hparams(values, dict.fromkeys(VAL_METRICS)):  # the experiment, session start and end
        writer.file_writer.add_summary(summary)
    writer.flush()


def gif_bytes(frames: np.ndarray, fps: int = 8, min_side: int = 128) -> io.BytesIO:
    """uint8 frames ``(T, H, W, 3)`` as an animated GIF (Pillow; no moviepy/imageio needed),
    enlarged with nearest-neighbour sampling so that small training crops stay visible."""
    from PIL import Image

    scale = max(1, -(-min_side // min(frames.shape[1:3])))
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    buffer.seek(0)
    return buffer


class TrackerHook:
    """Confusion matrix, per-class accuracy, mistakes and example clips after each evaluation,
    and the best checkpoint as a wandb artifact at the end.

    Reads ``evaluation.last`` (the run's ``EvalHook``: its per-video scores, its best checkpoint) and
    logs at ``runner.iter``, the step of the matching ``val/*`` scalars. Runs after ``EvalHook``
    and ``LoggerHook``; only the main process logs (no collective calls).

    Args:
        val_dataset: the validation ``ClipDataset`` (paths, class names, clips for the videos).
        num_clips: validation clips sent to wandb per evaluation (0: none).
        log_checkpoint: upload the best checkpoint as a wandb ``model`` artifact in ``after_run``.
        evaluation: the run's ``EvalHook``.
    """

    priority = "VERY_LOW"

    def __init__(self, val_dataset, *, evaluation: EvalHook, num_clips: int = 4, log_checkpoint: bool = True):
        self.val_dataset, self.num_clips, self.log_checkpoint = val_dataset, num_clips, log_checkpoint
        self.evaluation = evaluation
        self._logged = None

    @staticmethod
    def _trackers(runner) -> dict[str, Any]:
        """``{name: unwrapped tracker}``: the wandb run, TensorBoard's ``SummaryWriter``."""
        return {t.name: t.tracker for t in runner.accelerator.trackers}

    def after_train_epoch(self, runner) -> None:
        evaluation = self.evaluation.last
        if evaluation is None or evaluation is self._logged or not runner.accelerator.is_main_process:
            return
        self._logged, results = evaluation, evaluation.scores
        trackers = self._trackers(runner)
        if not trackers or not len(results.videos):
            return
        names = class_names(self.val_dataset.index.classes, results.scores.shape[1])
        predictions = results.predictions
        confusion = confusion_matrix(results.labels, predictions, len(names))
        per_class = per_class_accuracy(confusion, names)  # the test command's test_per_class.csv rows
        if "wandb" in trackers:
            self._log_wandb(trackers["wandb"], runner.iter, results, names, predictions, per_class)
        if "tensorboard" in trackers:
            self._log_tensorboard(trackers["tensorboard"], runner, confusion, names, per_class)

    def _log_wandb(self, run, step: int, results, names: list[str], predictions: np.ndarray,
                   per_class: list[list]) -> None:
        import wandb

        records = self.val_dataset.index.records
        mistakes = [[str(records[v].path), names[results.labels[i]], names[predictions[i]],
                     float(results.scores[i, predictions[i]])]
                    for i, v in enumerate(results.videos.tolist()) if predictions[i] != results.labels[i]]
        values = {
            "val/confusion_matrix": wandb.plot.confusion_matrix(
                y_true=results.labels.tolist(), preds=predictions.tolist(), class_names=names,
                title="Validation confusion matrix"),
            "val/per_class": wandb.Table(columns=["class", "videos", "correct", "accuracy"], data=per_class),
            "val/mistakes": wandb.Table(columns=["video", "label", "prediction", "score"],
                                        data=mistakes[:MAX_MISTAKES]),
        }
        clips = self._clips(results, names, predictions)
        if clips:
            values["val/clips"] = clips
        run.log(values, step=step)

    def _clips(self, results, names: list[str], predictions: np.ndarray) -> list:
        """``num_clips`` validation videos spread over the set, as captioned ``wandb.Video``s."""
        import wandb

        if self.num_clips <= 0:
            return []
        rows = np.unique(np.linspace(0, len(results.videos) - 1, self.num_clips).round().astype(int))
        clips = []
        for row in rows.tolist():
            video = int(results.videos[row])
            sample = self.val_dataset[video * self.val_dataset.views_per_video]
            frames = sample["video"].permute(1, 2, 3, 0).numpy()  # uint8 (T, H, W, C)
            name = Path(self.val_dataset.index.records[video].path).name
            caption = (f"{name} | true: {names[results.labels[row]]} | predicted: {names[predictions[row]]} "
                       f"({results.scores[row, predictions[row]]:.2f})")
            clips.append(wandb.Video(gif_bytes(frames), format="gif", caption=caption))
        return clips

    @staticmethod
    def _log_tensorboard(writer, runner, confusion: np.ndarray, names: list[str], per_class: list[list]) -> None:
        from PIL import Image

        path = runner.work_dir / VAL_CONFUSION_FILE  # the latest evaluation's, also kept on disk
        plot_confusion(confusion, names, path)
        with Image.open(path) as image:
            writer.add_image("val/confusion_matrix", np.asarray(image.convert("RGB")), runner.iter,
                             dataformats="HWC")
        rows = "\n".join(f"| {n} | {v} | {c} | {'' if a is None else f'{a:.4f}'} |" for n, v, c, a in per_class)
        writer.add_text("val/per_class", "| class | videos | correct | accuracy |\n|---|---|---|---|\n" + rows,
                        runner.iter)
        writer.flush()

    def after_run(self, runner) -> None:
        if not self.log_checkpoint or not runner.accelerator.is_main_process:
            return
        run = self._trackers(runner).get("wandb")
        best = self.evaluation.best_checkpoint
        if run is None or not best or not Path(best).exists():
            return
        import wandb

        artifact = wandb.Artifact(f"model-{run.id}", type="model",
                                  metadata={"best_score": runner.meta.get("best_score"), "iter": runner.iter})
        artifact.add_file(str(best))
        for name in (RECIPE_FILE, CLASSES_FILE):  # beside the weights: predict/export can read it
            if (runner.work_dir / name).exists():
                artifact.add_file(str(runner.work_dir / name))
        run.log_artifact(artifact, aliases=["best", "latest"])
