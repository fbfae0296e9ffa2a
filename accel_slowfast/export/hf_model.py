"""Our SlowFast and X3D presets as transformers classes: a config, a video classifier and a video processor.

    from transformers import AutoModelForVideoClassification, pipeline
    model = AutoModelForVideoClassification.from_pretrained("exported/x", trust_remote_code=True)
    pipeline("video-classification", model="exported/x", trust_remote_code=True)("clip.avi")

An export folder (``accel-slowfast export``, written by ``hf_export.py``) carries a copy of this very
file, which its ``config.json`` and ``video_preprocessor_config.json`` name in their ``auto_map``: that
is the code ``trust_remote_code=True`` runs. So this module imports only torch, numpy, PyAV,
transformers and pytorchvideo, never ``accel_slowfast``: a user who loads the folder needs no
package of ours. Importing it (as ``accel_slowfast.export.hf_model``) also registers the classes with
``AutoConfig``, ``AutoModelForVideoClassification`` and ``AutoVideoProcessor`` for model type
``accel_slowfast``, so in a process that did, the folder opens without ``trust_remote_code``.

The network (``backbone`` in the config) is pytorchvideo's ``create_slowfast`` with the preset's
arguments (``slowfast_kwargs``) or its ``create_x3d`` (``x3d_kwargs``), held as ``slowfast`` whatever the
backbone: state-dict keys are pytorchvideo's under the prefix ``slowfast.``
(``slowfast.blocks.0.multipathway_blocks.0.conv.weight``, ``slowfast.blocks.0.conv.conv_t.weight`` ...).
The forward and X3D's adaptive head are ``accel_slowfast.models.builders.SlowFast``'s and
``accel_slowfast.models.x3d``'s,
restated here because this file must stand alone.

The processor takes what ``accel-slowfast predict`` takes with ``num_clips=1, num_crops=1``: the
centre clip of ``num_frames`` frames every ``frame_interval`` frames (mmaction2's test sampling with one
clip; a video shorter than the clip loops), decoded with PyAV (frame ``i`` = the ``i``-th decoded),
short side resized to ``size["shortest_edge"]`` (bilinear on uint8, as our data pipeline), centre crop,
normalized; ``pixel_values_videos`` is float ``(B, T, C, H, W)``.
"""

import math
import warnings

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import PILImageResampling
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

# pytorchvideo decorates a few functions with torch.jit.script at import time, which torch flags on every import
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script", category=FutureWarning)

# isort: split
from pytorchvideo.models.slowfast import FastToSlowFusionBuilder, create_slowfast  # noqa: E402
from pytorchvideo.models.x3d import create_x3d  # noqa: E402

MODEL_TYPE = "accel_slowfast"
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)


class SlowFastConfig(PretrainedConfig):
    """A SlowFast or X3D classifier: the network's builder arguments and its input clip.

    Args:
        backbone: ``slowfast`` (``create_slowfast``, two pathways) or ``x3d`` (``create_x3d``, one).
        alpha: slow/fast frame-rate ratio; the slow pathway is every ``alpha``-th frame from the first
            (1 for X3D).
        slowfast_kwargs: ``create_slowfast`` arguments (the preset's, e.g. ``{"model_depth": 50}``);
            None for X3D.
        fusion_kwargs: ``FastToSlowFusionBuilder`` arguments of a non-default lateral fusion, else None.
        x3d_kwargs: ``create_x3d`` arguments (the preset's clip length and crop, and its own); None for SlowFast.
        dropout: dropout rate before the classifier.
        num_frames: frames per clip (the pipeline samples this many); a multiple of ``alpha``.
        mean, std: RGB normalization of uint8 input, 0-255 scale.
        accel_slowfast: what ``accel_slowfast.export.hub.load_model`` and ``predict`` read (preset name,
            classes, the multi-view test settings); unused by transformers.
    """

    model_type = MODEL_TYPE

    def __init__(self, backbone: str = "slowfast", alpha: int = 4, slowfast_kwargs: dict | None = None,
                 fusion_kwargs: dict | None = None, x3d_kwargs: dict | None = None, dropout: float = 0.5,
                 num_frames: int = 32, mean: list[float] = IMAGENET_MEAN, std: list[float] = IMAGENET_STD,
                 accel_slowfast: dict | None = None, **kwargs):
        if backbone not in ("slowfast", "x3d"):
            raise ValueError(f"backbone must be 'slowfast' or 'x3d', got {backbone!r}")
        self.backbone = backbone
        self.alpha = alpha
        self.slowfast_kwargs = dict(slowfast_kwargs or {"model_depth": 50}) if backbone == "slowfast" else None
        self.fusion_kwargs = fusion_kwargs
        self.x3d_kwargs = dict(x3d_kwargs or {}) if backbone == "x3d" else None
        self.dropout = dropout
        self.num_frames = num_frames
        self.mean, self.std = list(mean), list(std)
        self.accel_slowfast = accel_slowfast or {}
        super().__init__(**kwargs)


def _tuples(value):
    """JSON's lists back to the tuples ``create_slowfast`` was given (kernel sizes, strides)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class SlowFastForVideoClassification(PreTrainedModel):
    """``pixel_values_videos`` ``(B, T, C, H, W)``, float normalized (the processor's) or uint8 0-255,
    to ``logits`` ``(B, num_labels)``; with ``labels``, also the cross-entropy ``loss``."""

    config_class = SlowFastConfig
    base_model_prefix = "slowfast"
    main_input_name = "pixel_values_videos"

    def __init__(self, config: SlowFastConfig):
        super().__init__(config)
        # The head pools adaptively, so any crop size and clip length work (as accel_slowfast's presets).
        if config.backbone == "x3d":
            kwargs = {key: _tuples(value) for key, value in config.x3d_kwargs.items()}
            self.slowfast = create_x3d(model_num_class=config.num_labels, dropout_rate=config.dropout,
                                       head_activation=None, **kwargs)  # logits, as accel_slowfast.models.x3d
            # the head's pool sized for the preset's clip, made adaptive; it holds no weights
            self.slowfast.blocks[-1].pool.pool = nn.AdaptiveAvgPool3d(1)
        else:
            kwargs = {key: _tuples(value) for key, value in config.slowfast_kwargs.items()}
            if config.fusion_kwargs is not None:
                fusion = {key: _tuples(value) for key, value in config.fusion_kwargs.items()}
                kwargs["fusion_builder"] = FastToSlowFusionBuilder(**fusion).create_module
            self.slowfast = create_slowfast(model_num_class=config.num_labels, dropout_rate=config.dropout,
                                            head_pool=nn.AdaptiveAvgPool3d, **kwargs)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Weights come from the checkpoint; a fresh model keeps pytorchvideo's initialisation."""

    def forward(self, pixel_values_videos: torch.Tensor, labels: torch.Tensor | None = None,
                **kwargs) -> ImageClassifierOutput:
        clip = pixel_values_videos.transpose(1, 2)  # (B, C, T, H, W)
        if clip.shape[2] % self.config.alpha:
            raise ValueError(f"{clip.shape[2]} frames: the clip length must be a multiple of alpha "
                             f"({self.config.alpha})")
        if clip.dtype == torch.uint8:  # as accel_slowfast's model: normalized here, in float32
            mean = torch.tensor(self.config.mean, device=clip.device).view(1, 3, 1, 1, 1)
            std = torch.tensor(self.config.std, device=clip.device).view(1, 3, 1, 1, 1)
            clip = (clip - mean) / std
        if self.config.backbone == "x3d":  # one pathway: the clip itself
            logits = self.slowfast(clip)
        else:  # [slow (B, C, T/alpha, H, W), fast]: a fresh list, which pytorchvideo's blocks overwrite in place
            logits = self.slowfast([clip[:, :, :: self.config.alpha], clip])
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


class SlowFastVideosKwargs(VideosKwargs, total=False):
    frame_interval: int


class SlowFastVideoProcessor(BaseVideoProcessor):
    """The clip ``accel-slowfast predict`` scores with ``num_clips=1, num_crops=1`` (see the module docstring).

    ``frame_interval``: the step between sampled frames; ``size["shortest_edge"]``: the short side
    after resizing; ``crop_size``: the centre crop; ``image_mean`` / ``image_std``: 0-1 scale, after
    ``rescale_factor``.
    """

    valid_kwargs = SlowFastVideosKwargs
    model_input_names = ["pixel_values_videos"]
    size = {"shortest_edge": 256}
    resample = PILImageResampling.BILINEAR  # what _short_side_resize does (on uint8, not through PIL)
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = do_center_crop = do_rescale = do_normalize = do_convert_rgb = do_sample_frames = True
    rescale_factor = 1 / 255
    image_mean = [m / 255 for m in IMAGENET_MEAN]
    image_std = [s / 255 for s in IMAGENET_STD]
    num_frames = 32
    frame_interval = 2

    def sample_frames(self, metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None,
                      frame_interval: int | None = None, **kwargs) -> np.ndarray:
        """The centre clip's frame indices: mmaction2's test sampling with one clip (the formula of
        ``accel_slowfast.data.views.uniform_clip_offsets``), looping over a video shorter than the clip."""
        if fps is not None:
            raise ValueError("this processor samples num_frames frames every frame_interval frames; fps is not used")
        num_frames, frame_interval = num_frames or self.num_frames, frame_interval or self.frame_interval
        total, span = metadata.total_num_frames, num_frames * frame_interval
        start = int((total - span + 1) / 2) if total > span - 1 else 0
        return (start + np.arange(num_frames) * frame_interval) % total

    def fetch_videos(self, video_url_or_urls, sample_indices_fn=None):
        """Decode with PyAV (frame ``i`` = the ``i``-th decoded, as accel_slowfast's decoders count), so the
        pipeline needs no torchcodec; returns ``(uint8 (T, H, W, C) frames, VideoMetadata)``."""
        if isinstance(video_url_or_urls, list):
            return list(zip(*[self.fetch_videos(x, sample_indices_fn) for x in video_url_or_urls], strict=True))
        with av.open(video_url_or_urls) as container:
            stream = container.streams.video[0]
            total = stream.frames or sum(1 for _ in container.decode(stream))  # some containers store no count
            metadata = VideoMetadata(total_num_frames=total, fps=float(stream.average_rate or 0),
                                     height=stream.codec_context.height, width=stream.codec_context.width,
                                     video_backend="pyav")
            indices = sample_indices_fn(metadata=metadata) if sample_indices_fn else np.arange(total)
            metadata.frames_indices = indices
            container.seek(0)
            wanted, frames = set(indices.tolist()), {}
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format="rgb24")
                if i >= indices.max():
                    break
        last = max(frames)  # a stream that ends early: later indices get its last frame
        return np.stack([frames[min(i, last)] for i in indices.tolist()]), metadata

    def _preprocess(self, videos: list[torch.Tensor], do_resize: bool, size, do_center_crop: bool, crop_size,
                    do_rescale: bool, rescale_factor: float, do_normalize: bool, image_mean, image_std,
                    return_tensors=None, **kwargs) -> BatchFeature:
        processed = []
        for video in videos:  # uint8 (T, C, H, W)
            frames = video.permute(0, 2, 3, 1).contiguous()  # (T, H, W, C), as accel_slowfast's decoders give
            if do_resize:
                frames = _short_side_resize(frames, size.shortest_edge)
            if do_center_crop:
                frames = _centre_crop(frames, crop_size.height, crop_size.width)
            clip = frames.permute(0, 3, 1, 2)  # (T, C, H, W)
            processed.append(self.rescale_and_normalize(clip, do_rescale, rescale_factor, do_normalize, image_mean,
                                                        image_std))
        return BatchFeature(data={"pixel_values_videos": torch.stack(processed)}, tensor_type=return_tensors)


def _short_side_resize(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """uint8 ``(T, H, W, C)`` with the short side at ``short_side``: pytorchvideo's size rounding and torch's
    bilinear uint8 kernel on a channels-last view, as ``accel_slowfast.data.transforms`` resizes."""
    height, width = frames.shape[1:3]
    if width < height:
        height, width = int(math.floor(height / width * short_side)), short_side
    else:
        height, width = short_side, int(math.floor(width / height * short_side))
    if frames.shape[1:3] == (height, width):
        return frames
    resized = F.interpolate(frames.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=False)
    return resized.permute(0, 2, 3, 1)


def _centre_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre ``height`` x ``width`` window of uint8 ``(T, H, W, C)`` (offsets rounded up, as pytorchvideo)."""
    top, left = math.ceil((frames.shape[1] - height) / 2), math.ceil((frames.shape[2] - width) / 2)
    return frames[:, top:top + height, left:left + width]


SlowFastConfig.register_for_auto_class()
SlowFastForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
SlowFastVideoProcessor.register_for_auto_class()
# exist_ok: a folder's copy of this file, loaded with trust_remote_code, registers its own classes again
AutoConfig.register(MODEL_TYPE, SlowFastConfig, exist_ok=True)
AutoModelForVideoClassification.register(SlowFastConfig, SlowFastForVideoClassification, exist_ok=True)
AutoVideoProcessor.register(SlowFastConfig, SlowFastVideoProcessor, exist_ok=True)
