"""Run a model over a loader and gather scores from every process, exactly once per sample."""

import numpy as np
import torch
from accelerate import Accelerator


@torch.no_grad()
def collect_scores(model: torch.nn.Module, data_loader, accelerator: Accelerator) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(N, num_classes)`` and labels ``(N,)`` of the whole (prepared) loader.

    Every process must call this. ``gather_for_metrics`` drops the samples Accelerate repeated
    to give every process the same number of batches, so ``N`` is the dataset size.
    """
    was_training = model.training
    model.eval()
    scores, labels = [], []
    for batch in data_loader:
        logits = model(batch["video"])  # (B, num_classes)
        logits, label = accelerator.gather_for_metrics((logits.float(), batch["label"]))
        scores.append(logits.cpu())
        labels.append(label.cpu())
    model.train(was_training)
    return torch.cat(scores).numpy(), torch.cat(labels).numpy()
