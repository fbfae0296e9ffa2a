"""Batch-level regularisation on the model's device: MixUp, CutMix and label smoothing, as soft targets.

    blending = Blending(num_classes=400, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    mix = BatchMixing(blending, seed=0, normalize=model.normalize, process_index=accelerator.process_index)
    batch = mix(batch, iteration)     # the runner's train iteration does it (training.build_runner)

In each training iteration ``BatchMixing`` takes the batch (already on the device),
normalizes its uint8 clips with the model's
``normalize`` (so mixing averages normalized values, and the model takes the float clips as they
are), mixes them, and adds ``target``: ``(B, num_classes)`` probabilities, each row summing to 1,
that ``training.classification_step``'s cross-entropy uses instead of ``label``. ``label`` stays
the hard labels; validation, the test and every accuracy use it.

The mixing is pytorchvideo's ``MixUp`` and ``CutMix`` (not its ``MixVideo``, which builds both,
so it cannot leave one at alpha 0, and always mixes), with their label convention (PySlowFast's
and timm's): each clip is mixed with the clip at the mirrored position of the batch
(``flip(0)``), and the smoothing ``e`` gives the other classes ``e / num_classes`` each. A batch
is mixed with probability ``mix_prob``; with both alphas set, by CutMix with probability
``switch_prob``, else MixUp (PySlowFast's ``MIXUP.PROB`` and ``SWITCH_PROB``). A batch of one clip
(a last, short batch) is not mixed. The batch holds one clip per video, so whatever the model
takes from it (SlowFast: both pathways) gets the same lambda and the same box.

Each batch's draws come from torch's CPU generator seeded by (recipe seed, process index, global
iteration) inside ``fork_rng``: the same mix on a resumed run, a different one on every process
and iteration, and the global RNG state that checkpoints hold is left as it was.

Why in the runner's iteration, not the train step: the seed needs the global iteration, which
the runner holds and the step is not given. (mmaction2 blends inside its recognizer's training
forward, or, in 1.x, its data preprocessor.)
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from accel_slowfast import compat  # noqa: F401  (before pytorchvideo.transforms: the torchvision module it needs)

# isort: split
from pytorchvideo.transforms import CutMix, MixUp
from pytorchvideo.transforms.functional import convert_to_one_hot

BLENDING_STREAM = 0x626C656E  # "blen": keeps these seeds apart from the dataset's (seed, epoch, index) ones


class Blending:
    """MixUp/CutMix of a normalized float batch and its soft targets; off (smoothing only) without alphas.

    Args:
        num_classes: the width of the targets.
        mixup_alpha, cutmix_alpha: Beta(alpha, alpha) of MixUp's lambda and of CutMix's box; 0: that one is off.
        mix_prob: probability that a batch is mixed.
        switch_prob: with both alphas, probability of CutMix rather than MixUp.
        label_smoothing: ``e`` of the targets (1 - e + e / num_classes on the true class).
    """

    def __init__(self, *, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 mix_prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.0):
        self.num_classes, self.label_smoothing = num_classes, label_smoothing
        self.mix_prob, self.switch_prob = mix_prob, switch_prob
        common = dict(label_smoothing=label_smoothing, num_classes=num_classes)
        self.mixers = [mix(alpha=alpha, **common) for mix, alpha in ((MixUp, mixup_alpha), (CutMix, cutmix_alpha))
                       if alpha > 0]

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``clips`` (B, C, T, H, W) float, mixed in place, and their targets (B, num_classes) float32.

        The draws (whether to mix, which mixer, lambda, the box) depend on ``seed`` alone.
        """
        with torch.random.fork_rng(devices=[]):  # pytorchvideo's mixers draw from the CPU generator only
            torch.default_generator.manual_seed(seed)
            if self.mixers and clips.shape[0] > 1 and torch.rand(1).item() < self.mix_prob:
                # CutMix (the last) when it is the only one, or with probability switch_prob
                mixer = self.mixers[-1 if len(self.mixers) == 1 or torch.rand(1).item() < self.switch_prob else 0]
                clips, targets = mixer(clips, labels)
                return clips, targets.float()
        return clips, convert_to_one_hot(labels, self.num_classes, self.label_smoothing).float()


class BatchMixing:
    """A training batch's blend: float ``video`` mixed on the device, soft ``target``.

    Args:
        blending: what to do to a batch.
        seed: the recipe's seed (with the process index and the global iteration, each batch's).
        normalize: the model's ``normalize`` (uint8 clips to the float ones it takes).
        process_index: this process's index (``accelerator.process_index``).
    """

    def __init__(self, blending: Blending, seed: int, normalize: Callable[[torch.Tensor], torch.Tensor],
                 process_index: int):
        self.blending, self.seed, self.normalize, self.process_index = blending, seed, normalize, process_index

    def __call__(self, batch: dict[str, Any], iteration: int) -> dict[str, Any]:
        """``batch`` with ``video`` blended and ``target`` added, for global iteration ``iteration``."""
        clips = self.normalize(batch["video"])  # (B, C, T, H, W) float32, a new tensor: mixed in place
        words = [BLENDING_STREAM, self.seed, self.process_index, iteration]
        clips, target = self.blending(clips, batch["label"], int(np.random.default_rng(words).integers(2**63)))
        return {**batch, "video": clips, "target": target}
