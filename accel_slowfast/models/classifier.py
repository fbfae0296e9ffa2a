"""The model boundary every backbone shares: one clip ``(B, C, T, H, W)`` in, logits ``(B, num_classes)`` out.

    from accel_slowfast.models.builders import build_model
    model = build_model("x3d_xs", num_classes=5)                 # a VideoClassifier
    logits = model(torch.zeros(2, 3, 16, 56, 56, dtype=torch.uint8))

``VideoClassifier`` runs pytorchvideo ``blocks`` (a ``create_*`` network's, whose parameter names it
keeps, so pytorchvideo checkpoints load as they are) after normalizing the clip; a backbone with
several pathways says how it takes them from the clip (``models.SlowFast``), a one-pathway backbone
(``x3d.X3D``) takes the clip as it is. Data, blending, predict and export deal in this one clip.
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from accel_slowfast.models.presets import IMAGENET_MEAN, IMAGENET_STD, NUM_STAGES


class VideoClassifier(nn.Module):
    """pytorchvideo ``blocks`` (stem, res2..res5, head) behind the normalization of one clip.

    Input clips are uint8 RGB (0-255), as ``ClipDataset`` yields them: the model normalizes them
    with ``mean`` and ``std`` (0-255 scale) on its own device, like mmaction2 1.x's data
    preprocessor. Float clips are taken as normalized already (``engine.mixing.BatchMixing`` mixes
    normalized clips).

    ``frozen_stages`` (-1 .. 4): the stem and res stages 1..frozen_stages (``blocks[0..k]``) get
    ``requires_grad=False`` and stay in eval mode (BatchNorm keeps its running statistics) even
    after ``model.train()``, as mmaction2's ``frozen_stages`` does; 4 trains the classifier only.
    """

    def __init__(self, blocks: nn.ModuleList, frozen_stages: int = -1,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        # Not in the state dict: checkpoints stay pytorchvideo's layout; the recipe holds them.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1), persistent=False)
        if not -1 <= frozen_stages <= NUM_STAGES:
            raise ValueError(f"frozen_stages must be in [-1, {NUM_STAGES}], got {frozen_stages}")
        self.blocks = blocks
        self.frozen_stages = frozen_stages
        for param in self.frozen_modules().parameters():
            param.requires_grad = False

    def frozen_modules(self) -> nn.ModuleList:
        """The modules ``frozen_stages`` freezes: ``blocks[0..frozen_stages]``."""
        return self.blocks[: self.frozen_stages + 1]

    def train(self, mode: bool = True) -> "VideoClassifier":
        super().train(mode)
        self.frozen_modules().eval()  # frozen BatchNorm layers keep their statistics
        return self

    def normalize(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, T, H, W)`` clips as the network takes them (a new float32 tensor); float ones as they are."""
        return (clips - self.mean) / self.std if clips.dtype == torch.uint8 else clips

    def pathways(self, clip: torch.Tensor) -> Any:
        """The first block's input from the normalized clip: the clip itself for a one-pathway backbone."""
        return clip

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.pathways(self.normalize(clip))  # (B, C, T, H, W) float32, or a backbone's list of pathways
        for block in self.blocks:
            x = block(x)
        return x  # (B, num_classes)
