"""Run a model over a loader, gather per-view results from every process once per sample, and
turn them into per-video scores and metrics."""

from dataclasses import dataclass

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from accel_slowfast.data.views import aggregate_views
from accel_slowfast.metrics import classification_metrics


@torch.no_grad()
def collect_scores(model: torch.nn.Module, data_loader, accelerator: Accelerator, progress: str = ""
                   ) -> dict[str, np.ndarray]:
    """Per-view ``scores`` ``(V, num_classes)`` (logits), ``label``, ``video_index`` and ``replaced``.

    Every process must call this. ``gather_for_metrics`` drops the samples Accelerate repeated
    to give every process the same number of batches, so ``V`` is the dataset size. A non-empty
    ``progress`` shows a progress bar of that name over the views, on the main process.
    """
    was_training = model.training
    model.eval()
    keys = ("label", "video_index", "replaced")
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ("scores", *keys)}
    bar = tqdm(total=len(data_loader.dataset), desc=progress, unit="view", dynamic_ncols=True,
               disable=not progress or not accelerator.is_main_process)
    for batch in data_loader:
        logits = model(batch["video"])  # (B, num_classes)
        gathered = accelerator.gather_for_metrics((logits.float(), *(batch[key] for key in keys)))
        for key, value in zip(("scores", *keys), gathered, strict=True):
            parts[key].append(value.cpu())
        bar.update(len(gathered[0]))
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

    def metrics(self) -> dict:
        """``top1_acc``, ``top5_acc``, ``mean_class_accuracy``, ``num_videos``, ``num_failed``."""
        metrics = classification_metrics(self.scores, self.labels) if len(self.videos) else \
            {"top1_acc": 0.0, "top5_acc": 0.0, "mean_class_accuracy": 0.0}
        return {**metrics, "num_videos": int(len(self.videos)), "num_failed": int(len(self.failed))}


def score_videos(model: torch.nn.Module, data_loader, accelerator: Accelerator, average_clips: str = "prob",
                 progress: str = "") -> VideoScores:
    """Score every video of a (prepared) loader, averaging its views (``prob`` or ``score``)."""
    views = collect_scores(model, data_loader, accelerator, progress)
    videos, scores, failed = aggregate_views(views["scores"], views["video_index"], views["replaced"], average_clips)
    label_of = dict(zip(views["video_index"].tolist(), views["label"].tolist(), strict=True))
    labels = np.array([label_of[v] for v in videos.tolist()], dtype=np.int64)
    return VideoScores(videos, scores, labels, failed, len(views["scores"]))


def evaluate(model: torch.nn.Module, data_loader, accelerator: Accelerator, average_clips: str = "prob") -> dict:
    """Metrics per video (views averaged), and how many videos were scored (``num_videos``) and
    could not be (``num_failed``: a view failed to decode)."""
    return score_videos(model, data_loader, accelerator, average_clips).metrics()
