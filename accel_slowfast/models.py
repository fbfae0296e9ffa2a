"""SlowFast presets built with ``pytorchvideo.models.create_slowfast``.

Data flow (``alpha`` = slow/fast frame-rate ratio, ``beta_inv`` = fast channel reduction)::

    frames (B, 3, T, H, W) --pack_pathway--+--> slow (B, 3, T/alpha, H, W) -> stem -> res2..res5 -> pool -+
                                           +--> fast (B, 3, T, H, W)       -> stem -> res2..res5 -> pool -+
                                                (fast -> slow lateral fusion after the stem and res2..res4)  |
                                                                     concat [slow, fast] -> dropout -> fc <--+

The head pools adaptively, so any crop size and clip length work (pytorchvideo's default
``AvgPool3d`` head only fits 224 px and its training clip length). Parameter names equal
pytorchvideo's (``blocks.0.multipathway_blocks.0.conv.weight`` ...), so its checkpoints load
as they are.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pytorchvideo.models.slowfast import create_slowfast
from torch import nn


@dataclass(frozen=True)
class Preset:
    """A model preset: the ``create_slowfast`` arguments and the clip the model was designed for."""

    alpha: int
    clip_len: int
    frame_interval: int
    crop_size: int
    kwargs: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    # The seed's model (PySlowFast/pytorchvideo 4x16 layout): 32 fast / 4 slow frames,
    # fast->slow fusion with a (5, 1, 1) kernel and temporal stride 8.
    "slowfast_r50_4x16": Preset(
        alpha=8,
        clip_len=32,
        frame_interval=2,
        crop_size=224,
        kwargs=dict(
            model_depth=50,
            slowfast_fusion_conv_kernel_size=(5, 1, 1),
            slowfast_fusion_conv_stride=(8, 1, 1),
        ),
    ),
    # pytorchvideo hub's ``slowfast_r50`` (8 slow / 32 fast frames): same state-dict keys and shapes.
    "slowfast_r50_8x8": Preset(alpha=4, clip_len=32, frame_interval=2, crop_size=224, kwargs=dict(model_depth=50)),
    # A ~0.7 M-parameter SlowFast for CPU runs and tests: one block per stage, 16/2 stem channels.
    "slowfast_tiny": Preset(
        alpha=4,
        clip_len=16,
        frame_interval=2,
        crop_size=56,
        kwargs=dict(
            model_depth=18,
            stem_dim_outs=(16, 2),
            slowfast_fusion_conv_kernel_size=(5, 1, 1),
            slowfast_fusion_conv_stride=(4, 1, 1),
        ),
    ),
}


class SlowFast(nn.Module):
    """A SlowFast classifier taking ``[slow, fast]`` and returning logits ``(B, num_classes)``.

    pytorchvideo's multipathway blocks overwrite their input list in place, so ``forward``
    copies the list first: calling the model twice on the same batch gives the same result.
    """

    def __init__(self, blocks: nn.ModuleList, alpha: int):
        super().__init__()
        self.blocks = blocks
        self.alpha = alpha

    def forward(self, video: Sequence[torch.Tensor]) -> torch.Tensor:
        x = list(video)  # [slow (B, C, T/alpha, H, W), fast (B, C, T, H, W)]
        for block in self.blocks:
            x = block(x)
        return x  # (B, num_classes)


def build_model(name: str, num_classes: int, dropout: float = 0.5) -> SlowFast:
    """Build preset ``name`` with a fresh ``num_classes``-way head."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; presets are {sorted(PRESETS)}")
    preset = PRESETS[name]
    net = create_slowfast(
        model_num_class=num_classes,
        dropout_rate=dropout,
        head_pool=nn.AdaptiveAvgPool3d,
        **preset.kwargs,
    )
    return SlowFast(net.blocks, preset.alpha)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
