"""Every preset as a network (``build_model``): SlowFast built here with ``pytorchvideo.models.create_slowfast``,
X3D in ``accel_slowfast/x3d.py``; both take one clip (``accel_slowfast/classifier.py``). Their sizes:

    accel-slowfast models                       # parameters, GMACs and GFLOPs per view of every preset

SlowFast's data flow (``alpha`` = slow/fast frame-rate ratio, ``beta_inv`` = fast channel reduction)::

    clip (B, 3, T, H, W) -normalize-+--> slow x[:, :, ::alpha] -> stem -> res2..res5 -> pool -+
                                    +--> fast x                -> stem -> res2..res5 -> pool -+
                                   (fast -> slow lateral fusion after the stem and res2..res4) |
                                                       concat [slow, fast] -> dropout -> fc <--+

The model takes one clip and packs its pathways itself, so the data, blending, predict and export
code deal in one clip whatever the backbone. The slow pathway is every ``alpha``-th frame from the
first (mmaction2's choice: frames 0, 8, 16, 24 of 32 at alpha 8).

The head pools adaptively, so any crop size and clip length work (pytorchvideo's default
``AvgPool3d`` head only fits 224 px and its training clip length). Parameter names equal
pytorchvideo's (``blocks.0.multipathway_blocks.0.conv.weight`` ...), so its checkpoints load
as they are; mmaction2 checkpoints load into ``slowfast_r50_4x16_mmaction2`` after
``accel_slowfast.commands.convert`` renames their keys (``load_from`` does it on the fly).

``blocks`` index by stage: 0 = both stems (+ fusion), 1..4 = res2..res5 of both pathways (+ fusion
after res2..res4), 5 = pool + concat, 6 = dropout + ``proj`` (the classifier). ``frozen_stages=k``
freezes blocks 0..k, so ``frozen_stages=4`` is linear probing.
"""

import logging
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from accel_slowfast import compat  # noqa: F401  (before pytorchvideo: silences its torch.jit.script warnings)

# isort: split
from pytorchvideo.models.slowfast import FastToSlowFusionBuilder, create_slowfast

from accel_slowfast.models.classifier import VideoClassifier
from accel_slowfast.models.presets import IMAGENET_MEAN, IMAGENET_STD, PRESETS
from accel_slowfast.models.x3d import build_x3d


class SlowFast(VideoClassifier):
    """A SlowFast classifier taking one clip ``(B, C, T, H, W)`` (``VideoClassifier``: uint8 or
    normalized float, ``frozen_stages``); ``T`` must be a multiple of ``alpha``.

    pytorchvideo's multipathway blocks overwrite their input list in place, so ``pathways``
    builds a fresh ``[slow, fast]`` list each call. Unlike mmaction2's ``frozen_stages``, whose
    stage-0 freeze leaves the first lateral conv trainable, a frozen block here includes the fusion
    that follows it.
    """

    def __init__(self, blocks: nn.ModuleList, alpha: int, frozen_stages: int = -1,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__(blocks, frozen_stages, mean, std)
        self.alpha = alpha

    def pathways(self, fast: torch.Tensor) -> list[torch.Tensor]:
        if fast.shape[2] % self.alpha:
            raise ValueError(f"clip_len ({fast.shape[2]}) must be a multiple of the model's alpha ({self.alpha})")
        return [fast[:, :, :: self.alpha], fast]  # [slow (B, C, T/alpha, H, W), fast]: views, in a fresh list


def build_model(
    name: str,
    num_classes: int,
    dropout: float = 0.5,
    *,
    frozen_stages: int = -1,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **overrides: Any,
) -> VideoClassifier:
    """Build preset ``name`` (a ``SlowFast`` or an ``X3D``, as its backbone says) with a fresh ``num_classes``-way head.

    Args:
        name: a key of ``PRESETS``.
        num_classes: classifier outputs.
        dropout: dropout rate before the classifier.
        frozen_stages: freeze the stem(s) and res stages 1..k (see ``VideoClassifier``); 4 trains
            the classifier only (linear probing), -1 trains everything.
        mean, std: RGB normalization of uint8 input clips, on the 0-255 scale (the recipe's).
        overrides: the builder's arguments replacing the preset's, e.g. ``model_depth=18,
            stem_dim_outs=(8, 1)`` for a narrow, shallow variant of a SlowFast.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; presets are {sorted(PRESETS)}")
    preset = PRESETS[name]
    if preset.backbone == "x3d":
        return build_x3d(preset, num_classes, dropout, frozen_stages, mean, std, **overrides)
    kwargs = dict(preset.kwargs)
    if preset.fusion is not None:
        kwargs["fusion_builder"] = FastToSlowFusionBuilder(**preset.fusion).create_module
    net = create_slowfast(
        model_num_class=num_classes,
        dropout_rate=dropout,
        head_pool=nn.AdaptiveAvgPool3d,
        **{**kwargs, **overrides},
    )
    _use_python_ints(net)
    return SlowFast(net.blocks, preset.alpha, frozen_stages, mean, std)


def _use_python_ints(net: nn.Module) -> None:
    """Turn the numpy integers that ``create_slowfast`` computes into the strides, paddings and
    kernel sizes of its convolutions and pools into Python ints. torch.compile traces numpy scalars
    as tensors, so Inductor fails on those convolutions (``aten._local_scalar_dense``, seen with
    torch 2.11 on CUDA) and falls back to eager execution in pieces."""
    for module in net.modules():
        for attr in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(module, attr, None)
            if isinstance(value, (tuple, list)):
                setattr(module, attr, tuple(int(v) if isinstance(v, Integral) else v for v in value))
            elif isinstance(value, Integral):
                setattr(module, attr, int(value))


def _to_channels_last(module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the input clip ``(B, C, T, H, W)`` in ``channels_last_3d`` like the weights."""
    (clip,) = args
    return (clip.contiguous(memory_format=torch.channels_last_3d),)  # the slow pathway's view keeps that layout


def apply_fast_path(model: VideoClassifier, *, channels_last: bool, compile: bool) -> VideoClassifier:
    """``channels_last``: weights and inputs in ``channels_last_3d``; ``compile``: ``torch.compile``
    in place (``nn.Module.compile``), so the module, its state-dict keys and checkpoints are unchanged."""
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
        model.register_forward_pre_hook(_to_channels_last)
    if compile:
        model.compile()
    return model


def convert_sync_batchnorm(model: torch.nn.Module, enabled: bool, accelerator: Accelerator,
                           logger: logging.Logger | None = None) -> torch.nn.Module:
    """With ``enabled`` and more than one process, turn every BatchNorm (pytorchvideo's
    ``BatchNorm3d`` included) into ``SyncBatchNorm``; call it before ``accelerator.prepare``.

    With one process there is nothing to synchronise and the model is returned unchanged (logged).
    ``SyncBatchNorm`` has no CPU implementation, so multi-process CPU runs are refused.
    """
    logger = logger or logging.getLogger("accel_slowfast")
    if not enabled:
        return model
    if accelerator.num_processes == 1:
        logger.info("sync_bn: one process, nothing to synchronise; keeping plain BatchNorm")
        return model
    if accelerator.device.type == "cpu":
        raise ValueError("sync_bn: torch's SyncBatchNorm runs on GPUs only, not on CPU processes; "
                         "set sync_bn: false")
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    count = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules())
    logger.info("sync_bn: %d BatchNorm layers converted to SyncBatchNorm over %d processes", count,
                accelerator.num_processes)
    return converted


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_report(model: VideoClassifier, clip_len: int, crop_size: int) -> dict[str, float]:
    """Parameters (millions) and the forward cost of one ``clip_len`` x ``crop_size``² view.

    ``gmacs_per_view`` is fvcore's count, one multiply-add per unit: the figure PySlowFast,
    mmaction2 and pytorchvideo's model zoo publish as "GFLOPs" (SlowFast R50 4x16: 36.4 at 256 px,
    27.8 at 224 px). ``gflops_per_view`` counts each multiply-add as the two floating-point
    operations it is, the unit of a device's peak TFLOP/s and so of model FLOP utilisation (MFU).
    """
    from fvcore.nn import FlopCountAnalysis

    clip = torch.zeros(1, 3, clip_len, crop_size, crop_size, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        count = FlopCountAnalysis(model, (clip,))
        count.unsupported_ops_warnings(False)
        count.uncalled_modules_warnings(False)
        macs = count.total()
    model.train(was_training)
    return {
        "params_m": count_parameters(model) / 1e6,
        "trainable_params_m": count_parameters(model, trainable_only=True) / 1e6,
        "gmacs_per_view": macs / 1e9,
        "gflops_per_view": 2 * macs / 1e9,
    }

