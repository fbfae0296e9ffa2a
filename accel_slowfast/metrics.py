"""Accuracy metrics with mmaction2's definitions (REFERENCE.md §4).

``scores`` is ``(N, num_classes)`` (logits or probabilities), ``labels`` is ``(N,)`` of class ids.
"""

import numpy as np


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
