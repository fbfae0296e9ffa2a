"""Scoring videos, and everything computed from the scores: mmaction2's accuracy metrics, the
multi-view average, the confusion matrix and per-class accuracy, the test reports.

    results = score_videos(model, loader, accelerator, "prob")  # every process calls it
    results.metrics()               # top1_acc, top5_acc, mean_class_accuracy, num_videos, num_failed
    write_reports(results, index, work_dir)  # test_predictions.csv, test_per_class.csv, test_confusion.png

``scores`` are ``(N, num_classes)`` (logits or probabilities) and ``labels`` ``(N,)`` class ids.
A video's score averages its views: the mean of their softmax (``average_clips: prob``, the
seed's) or of their logits (``score``). ``EvalHook`` and the test command (``engine/testing.py``)
score with ``score_videos``, ``predict`` averages with ``average_views``, and ``TrackerHook``
logs the same confusion matrix and per-class table as the test reports.
"""

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from accel_slowfast.checkpointing.names import TEST_CONFUSION_FILE, TEST_PER_CLASS_FILE, TEST_PREDICTIONS_FILE
from accel_slowfast.data.index import VideoIndex
from accel_slowfast.progress import Progress
from accel_slowfast.recipe.recipe import AVERAGE_CLIPS


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, topk: tuple[int, ...] = (1,)) -> list[float]:
    """Fraction of samples whose label is among the ``k`` highest scores, one value per ``k``."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    return [float((ranked[:, :k] == labels[:, None]).any(axis=1).mean()) for k in topk]


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class recall of the argmax prediction.

    The classes averaged over are those present in ``labels`` or in the predictions; a class
    that is predicted but never the true label has recall 0 (mmaction2's definition).
    """
    labels = np.asarray(labels)
    preds = np.asarray(scores).argmax(axis=1)
    classes = np.union1d(labels, preds)
    recalls = [float((preds[labels == c] == c).mean()) if (labels == c).any() else 0.0 for c in classes]
    return float(np.mean(recalls))


def classification_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``top1_acc``, ``top5_acc`` and ``mean_class_accuracy`` of one evaluation."""
    top1, top5 = top_k_accuracy(scores, labels, (1, 5))
    return {"top1_acc": top1, "top5_acc": top5, "mean_class_accuracy": mean_class_accuracy(scores, labels)}


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 (shifted by the maximum, so large logits stay finite)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def average_views(scores: np.ndarray, average_clips: str = "prob") -> np.ndarray:
    """One video's ``(num_classes,)`` score from its views' ``(V, num_classes)`` logits."""
    if average_clips not in AVERAGE_CLIPS:
        raise ValueError(f"average_clips must be one of {AVERAGE_CLIPS}, got {average_clips!r}")
    scores = np.asarray(scores, dtype=np.float64)
    return (softmax(scores) if average_clips == "prob" else scores).mean(axis=0)


def aggregate_views(
    scores: np.ndarray, video_index: np.ndarray, failed: np.ndarray, average_clips: str = "prob"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-video scores from per-view ``scores`` ``(V, num_classes)`` (gathered from every process).

    Returns ``(videos, video_scores, failed_videos)``: the sorted ids of the videos scored, their
    averaged scores ``(N, num_classes)``, and the ids of videos with any view that failed to
    decode (those are not scored: a replacement clip must never stand in for a test video).
    """
    scores = np.asarray(scores, dtype=np.float64)
    failed_videos = np.unique(video_index[np.asarray(failed, dtype=bool)])
    videos = np.setdiff1d(np.unique(video_index), failed_videos)
    video_scores = np.stack([average_views(scores[video_index == v], average_clips) for v in videos]) \
        if len(videos) else np.zeros((0, scores.shape[1]))
    return videos, video_scores, failed_videos


@torch.no_grad()
def collect_scores(model: torch.nn.Module, data_loader, accelerator: Accelerator, progress: str = "",
                   between_batches: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
    """Per-view ``scores`` ``(V, num_classes)`` (logits), ``label``, ``video_index`` and ``replaced``.

    Every process must call this. ``gather_for_metrics`` drops the samples Accelerate repeated
    to give every process the same number of batches, so ``V`` is the dataset size. A non-empty
    ``progress`` shows a progress bar of that name over the views, on the main process.
    ``between_batches()`` runs after each batch (every process: it may be a collective); an
    exception it raises ends the scoring.
    """
    was_training = model.training
    model.eval()
    keys = ("label", "video_index", "replaced")
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ("scores", *keys)}
    bar = Progress(len(data_loader.dataset), progress, unit="view",
                   disable=not progress or not accelerator.is_main_process)
    for batch in data_loader:
        logits = model(batch["video"])  # (B, num_classes)
        gathered = accelerator.gather_for_metrics((logits.float(), *(batch[key] for key in keys)))
        for key, value in zip(("scores", *keys), gathered, strict=True):
            parts[key].append(value.cpu())
        bar.update(len(gathered[0]))
        if between_batches is not None:
            between_batches()
    bar.close()
    model.train(was_training)
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


@dataclass
class VideoScores:
    """Per-video results: ``videos`` (index positions), averaged ``scores``, true ``labels``, and
    ``failed`` (videos with a view that could not be decoded: not scored)."""

    videos: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    failed: np.ndarray
    num_views: int

    @property
    def predictions(self) -> np.ndarray:
        """The top-1 class of each scored video (the first of tied scores, as ``top_k_accuracy``)."""
        return self.scores.argmax(axis=1)

    def metrics(self) -> dict:
        """``top1_acc``, ``top5_acc``, ``mean_class_accuracy``, ``num_videos``, ``num_failed``."""
        metrics = classification_metrics(self.scores, self.labels) if len(self.videos) else \
            {"top1_acc": 0.0, "top5_acc": 0.0, "mean_class_accuracy": 0.0}
        return {**metrics, "num_videos": int(len(self.videos)), "num_failed": int(len(self.failed))}


def score_videos(model: torch.nn.Module, data_loader, accelerator: Accelerator, average_clips: str = "prob",
                 progress: str = "", between_batches: Callable[[], None] | None = None) -> VideoScores:
    """Score every video of a (prepared) loader, averaging its views (``prob`` or ``score``);
    ``between_batches`` as in ``collect_scores``."""
    views = collect_scores(model, data_loader, accelerator, progress, between_batches)
    videos, scores, failed = aggregate_views(views["scores"], views["video_index"], views["replaced"], average_clips)
    label_of = dict(zip(views["video_index"].tolist(), views["label"].tolist(), strict=True))
    labels = np.array([label_of[v] for v in videos.tolist()], dtype=np.int64)
    return VideoScores(videos, scores, labels, failed, len(views["scores"]))


def evaluate(model: torch.nn.Module, data_loader, accelerator: Accelerator, average_clips: str = "prob") -> dict:
    """Metrics per video (views averaged), and how many videos were scored (``num_videos``) and
    could not be (``num_failed``: a view failed to decode)."""
    return score_videos(model, data_loader, accelerator, average_clips).metrics()


def class_names(classes: Sequence[str], num_classes: int) -> list[str]:
    """Names of classes ``0 .. num_classes - 1``; one the index does not name is its number."""
    return [classes[k] if k < len(classes) else str(k) for k in range(num_classes)]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``, rows: true class, columns: predicted class."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    return confusion


def per_class_accuracy(confusion: np.ndarray, names: list[str]) -> list[list]:
    """``[class, videos, correct, accuracy]`` per row of ``confusion``; accuracy is the class's
    recall, None for a class without videos."""
    support, correct = confusion.sum(axis=1), np.diag(confusion)
    return [[name, int(support[k]), int(correct[k]), float(correct[k] / support[k]) if support[k] else None]
            for k, name in enumerate(names)]


def write_reports(results: VideoScores, index: VideoIndex, work_dir: Path) -> list[Path]:
    """Per-video predictions, per-class accuracy and the confusion matrix of one test run; returns
    the files written."""
    num_classes = results.scores.shape[1] if results.scores.size else len(index.classes)
    names = class_names(index.classes, num_classes)
    ranked = np.argsort(-results.scores, axis=1, kind="stable")[:, :5]  # stable: ranked[:, 0] == predictions
    with open(work_dir / TEST_PREDICTIONS_FILE, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["video", "label", "prediction", "score", "correct", "top5"])
        for row, video in enumerate(results.videos.tolist()):
            top = ranked[row]
            writer.writerow([index.records[video].path, names[results.labels[row]], names[top[0]],
                             f"{results.scores[row, top[0]]:.6f}", int(top[0] == results.labels[row]),
                             " ".join(names[k] for k in top)])
        for video in results.failed.tolist():
            writer.writerow([index.records[video].path, names[index.records[video].label], "", "", "", "FAILED"])
    confusion = confusion_matrix(results.labels, results.predictions, num_classes)
    with open(work_dir / TEST_PER_CLASS_FILE, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["class", "videos", "correct", "accuracy"])
        for name, videos, correct, accuracy in per_class_accuracy(confusion, names):
            writer.writerow([name, videos, correct, "" if accuracy is None else f"{accuracy:.4f}"])
    plot_confusion(confusion, names, work_dir / TEST_CONFUSION_FILE)
    return [work_dir / name for name in (TEST_PREDICTIONS_FILE, TEST_PER_CLASS_FILE, TEST_CONFUSION_FILE)]


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path) -> None:
    """Row-normalized confusion matrix (rows: true class) as a PNG."""
    # Before the import, which may build the font cache: "generated new fontManager" is INFO.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    # Imported here: training imports this module and most runs never plot. A bare Figure draws
    # without pyplot, so the backend of the caller (a notebook's inline one) is left as it is.
    from matplotlib.figure import Figure

    rows = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    size = min(4 + 0.25 * len(names), 30)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=max(4, 10 - len(names) // 15))
    ax.set_yticks(range(len(names)), names, fontsize=max(4, 10 - len(names) // 15))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(names) <= 20:  # beyond that the counts no longer fit in their cells
        for (i, j), value in np.ndenumerate(confusion):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                        color="white" if normalized[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
