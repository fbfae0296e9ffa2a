"""X3D presets built with ``pytorchvideo.models.create_x3d``: the clip as one pathway.

    accel-slowfast train --model=x3d_xs                  # the synthetic default's 16 x 56 px clips
    accel-slowfast models x3d_xs x3d_s x3d_m             # parameters and GFLOPs per view

Data flow (``blocks`` index by stage, as SlowFast's do)::

    clip (B, 3, T, H, W) -normalize-> stem (0) -> res2..res5 (1..4) -> head (5):
        conv5 1x1x1 + BN + ReLU -> adaptive average pool -> lin5 1x1x1 + ReLU -> dropout -> proj

pytorchvideo's head pools with a fixed ``AvgPool3d`` sized for the preset's clip (4 x 160 px for
X3D-XS) and applies a softmax; here it pools adaptively, so any clip length and crop (from 32 px)
work, and returns logits. At the preset's own clip the adaptive pool averages the same window, so
the logits are pytorchvideo's (before its softmax). At a larger test crop (182 px for X3D-XS) its
head slides that window and averages the softmax of each position, where ours averages the features
first: the published test accuracies come from its head, not from this one. Parameter names equal pytorchvideo's
(``blocks.0.conv.conv_t.weight`` ...): its zoo checkpoints (``{"model_state": ...}``) load as they
are with ``load_from``. ``frozen_stages=4`` freezes conv5 and lin5 with the stages, so linear
probing trains ``proj`` only.
"""

from collections.abc import Sequence
from typing import Any

from torch import nn

from accel_slowfast import compat  # noqa: F401  (before pytorchvideo: silences its torch.jit.script warnings)

# isort: split
from pytorchvideo.models.x3d import create_x3d

from accel_slowfast.models.classifier import VideoClassifier
from accel_slowfast.models.presets import NUM_STAGES, Preset

HEAD = NUM_STAGES + 1  # blocks[5]: conv5, pool, lin5 (``pool``), dropout, proj


class X3D(VideoClassifier):
    """An X3D classifier taking one clip ``(B, C, T, H, W)`` (``VideoClassifier``); ``frozen_stages=4``
    also freezes the head's conv5 and lin5 (``blocks[5].pool``), leaving the classifier alone."""

    def frozen_modules(self) -> nn.ModuleList:
        frozen = super().frozen_modules()
        return nn.ModuleList([*frozen, self.blocks[HEAD].pool]) if self.frozen_stages == NUM_STAGES else frozen


def build_x3d(preset: Preset, num_classes: int, dropout: float, frozen_stages: int, mean: Sequence[float],
              std: Sequence[float], **overrides: Any) -> X3D:
    """``preset`` as an ``X3D`` with a fresh ``num_classes``-way head (``models.build_model``'s arguments)."""
    net = create_x3d(
        input_clip_length=preset.clip_len,
        input_crop_size=preset.crop_size,
        model_num_class=num_classes,
        dropout_rate=dropout,
        head_activation=None,  # logits: the loss and the test's averaging apply their own softmax
        **{**preset.kwargs, **overrides},
    )
    net.blocks[HEAD].pool.pool = nn.AdaptiveAvgPool3d(1)  # no weights: the state dict is unchanged
    return X3D(net.blocks, frozen_stages, mean, std)
