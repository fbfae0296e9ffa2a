"""The model presets as plain data: what the recipe, ``--help`` and ``models.build_model`` share.

Importing this module imports no torch, so reading a recipe (``load_recipe``) and printing
``accel-slowfast train --help`` stay fast; ``accel_slowfast/models.py`` turns a preset into a
network of its backbone (``BACKBONES``). Print every preset's size:

    accel-slowfast models
"""

from dataclasses import dataclass, field
from typing import Any, Literal

NUM_STAGES = 4  # res2..res5; ``frozen_stages`` ranges over -1 (nothing frozen) .. NUM_STAGES (all but the head)
# backbone -> (its name in prose, the pytorchvideo builder that makes it)
BACKBONES = {"slowfast": ("SlowFast", "create_slowfast"), "x3d": ("X3D", "create_x3d")}


@dataclass(frozen=True)
class Preset:
    """A model preset: its backbone, the builder's arguments and the clip the model was designed for.

    ``backbone``: ``slowfast`` (two pathways taken from the clip, ``create_slowfast``) or ``x3d`` (the
    clip as one pathway, ``create_x3d``). ``alpha``: SlowFast's fast/slow frame-rate ratio, which
    ``clip_len`` must be a multiple of; 1 for a one-pathway backbone (any ``clip_len``). ``kwargs``:
    the builder's arguments. ``fusion`` holds ``FastToSlowFusionBuilder`` arguments for a lateral
    fusion other than ``create_slowfast``'s (``models.build_model`` builds it); None keeps its default.
    """

    backbone: Literal[tuple(BACKBONES)]
    clip_len: int
    frame_interval: int
    crop_size: int
    alpha: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)
    fusion: dict[str, Any] | None = None


# conv_a kernels per (pathway, stage) of the hub's R101_50_50; res4 lists one kernel per block.
_RES4_50_50 = ((3, 1, 1),) * 6 + ((1, 1, 1),) * 17
_R101_50_50_CONV_A = (
    ((1, 1, 1), (1, 1, 1), _RES4_50_50, (3, 1, 1)),  # slow
    ((3, 1, 1), (3, 1, 1), _RES4_50_50, (3, 1, 1)),  # fast
)

PRESETS: dict[str, Preset] = {
    # The seed's model in the PySlowFast/pytorchvideo 4x16 layout: 32 fast / 4 slow frames,
    # fast->slow fusion with a (5, 1, 1) kernel and temporal stride 8, followed by BN + ReLU
    # (mmaction2 has neither: use ``slowfast_r50_4x16_mmaction2`` for mmaction2 weights).
    "slowfast_r50_4x16": Preset(
        backbone="slowfast",
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
    # mmaction2's SlowFast R50 4x16x1 exactly (checked against mmaction2 1.2.0's ResNet3dSlowFast and
    # SlowFastHead): tau 8 / alpha 8, lateral fast->slow conv (5, 1, 1) stride (8, 1, 1) with NO norm
    # and NO activation, res4/res5-only temporal kernels in the slow pathway, (5, 7, 7) fast stem,
    # lateral channels added to each slow stage's input. The head pools adaptively like mmaction2's.
    # Its weights come from ``accel_slowfast.commands.convert`` (which also reorders the FC's [fast, slow]
    # input columns to our [slow, fast]). Inputs: 0-255 RGB with the ImageNet mean/std (the recipe
    # defaults), slow = fast[:, :, ::8].
    "slowfast_r50_4x16_mmaction2": Preset(
        backbone="slowfast",
        alpha=8,
        clip_len=32,
        frame_interval=2,
        crop_size=224,
        kwargs=dict(model_depth=50),
        fusion=dict(
            slowfast_channel_reduction_ratio=8,
            conv_fusion_channel_ratio=2,
            conv_kernel_size=(5, 1, 1),
            conv_stride=(8, 1, 1),
            norm=None,
            activation=None,
            max_stage_idx=NUM_STAGES - 1,
        ),
    ),
    # pytorchvideo hub's ``slowfast_r50`` (8 slow / 32 fast frames): same state-dict keys and shapes.
    # The hub models expect [0, 1] frames normalised with mean 0.45, std 0.225, i.e. on our 0-255
    # scale: mean [114.75, 114.75, 114.75], std [57.375, 57.375, 57.375].
    "slowfast_r50_8x8": Preset(backbone="slowfast", alpha=4, clip_len=32, frame_interval=2, crop_size=224,
                               kwargs=dict(model_depth=50)),
    # pytorchvideo hub's ``slowfast_r101`` (8 slow / 32 fast frames; fusion kernel 5, stride 4).
    "slowfast_r101_8x8": Preset(
        backbone="slowfast",
        alpha=4,
        clip_len=32,
        frame_interval=2,
        crop_size=224,
        kwargs=dict(model_depth=101, slowfast_fusion_conv_kernel_size=(5, 1, 1)),
    ),
    # pytorchvideo hub's ``slowfast_16x8_r101_50_50`` (16 slow / 64 fast frames): R101 whose res4 has
    # temporal (3, 1, 1) kernels in its first 6 of 23 blocks only.
    "slowfast_16x8_r101_50_50": Preset(
        backbone="slowfast",
        alpha=4,
        clip_len=64,
        frame_interval=2,
        crop_size=224,
        kwargs=dict(
            model_depth=101,
            slowfast_fusion_conv_kernel_size=(5, 1, 1),
            stage_conv_a_kernel_sizes=_R101_50_50_CONV_A,
        ),
    ),
    # A ~0.7 M-parameter SlowFast for CPU runs and tests: one block per stage, 16/2 stem channels.
    "slowfast_tiny": Preset(
        backbone="slowfast",
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
    # X3D (Feichtenhofer 2020) as pytorchvideo's hub builds it (``x3d_xs``, ``x3d_s``, ``x3d_m``: width 2.0,
    # depth 2.2, so one network, 3.8 M parameters with 400 classes) with the clip each was trained on: frames x
    # interval at the training crop (pytorchvideo's and PySlowFast's model zoo: XS 4x12, S 13x6, M 16x5; test
    # crops 182, 182 and 256, a short side of that size and 3 crops). Their zoo weights (X3D_XS.pyth ...)
    # load as they are (``load_from``); they expect mean [114.75] * 3 and std [57.375] * 3 on the 0-255 scale.
    "x3d_xs": Preset(backbone="x3d", clip_len=4, frame_interval=12, crop_size=160),
    "x3d_s": Preset(backbone="x3d", clip_len=13, frame_interval=6, crop_size=160),
    "x3d_m": Preset(backbone="x3d", clip_len=16, frame_interval=5, crop_size=224),
}


IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255: the seed recipe's normalization
IMAGENET_STD = (58.395, 57.12, 57.375)
