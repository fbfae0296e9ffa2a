"""An export folder as transformers opens it, and reading it (or the previous layout) back.

    accel-slowfast export CKPT exported/x          # export.py calls write_hf_folder

writes, beside the model card::

    config.json                     SlowFastConfig: id2label / label2id, the backbone and its builder's
                                    arguments (create_slowfast's or create_x3d's), auto_map, and under
                                    "accel_slowfast" the settings
                                    load_model and predict read (preset, classes, clip and view settings)
    model.safetensors               the weights, pytorchvideo's keys under "slowfast."
    video_preprocessor_config.json  SlowFastVideoProcessor: clip length and interval, resize, crop, normalization
    hf_model.py                     the code trust_remote_code runs (a copy of accel_slowfast/hf_model.py)

Exports written before these files (a flat ``config.json`` of our settings, weights without the prefix)
still load with ``read_export``.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from accel_slowfast.export.hf_model import SlowFastConfig, SlowFastForVideoClassification, SlowFastVideoProcessor
from accel_slowfast.models.presets import PRESETS

PREFIX = SlowFastForVideoClassification.base_model_prefix + "."
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
PROCESSOR_FILE, CODE_FILE = "video_preprocessor_config.json", "hf_model.py"
HF_FILES = (CONFIG_FILE, WEIGHTS_FILE, PROCESSOR_FILE, CODE_FILE)


def hf_config(config: dict) -> SlowFastConfig:
    """The transformers config of an export's settings (``export.run_config``'s dict)."""
    preset = PRESETS[config["model"]]
    classes = config["classes"]
    if preset.backbone == "x3d":  # the arguments accel_slowfast.models.x3d.build_x3d gives create_x3d
        network = {"x3d_kwargs": {"input_clip_length": preset.clip_len, "input_crop_size": preset.crop_size,
                                  **preset.kwargs}}
    else:
        network = {"slowfast_kwargs": preset.kwargs, "fusion_kwargs": preset.fusion}
    return SlowFastConfig(backbone=preset.backbone, alpha=preset.alpha, **network,
                          num_frames=config["clip_len"], mean=config["mean"], std=config["std"],
                          id2label=dict(enumerate(classes)), label2id={name: i for i, name in enumerate(classes)},
                          accel_slowfast=config)


def video_processor(config: dict) -> SlowFastVideoProcessor:
    """The processor of the clip ``predict`` scores with ``num_clips=1, num_crops=1``."""
    return SlowFastVideoProcessor(
        num_frames=config["clip_len"], frame_interval=config["frame_interval"],
        size={"shortest_edge": config["short_side"]},
        crop_size={"height": config["test_crop_size"], "width": config["test_crop_size"]},
        image_mean=[m / 255 for m in config["mean"]], image_std=[s / 255 for s in config["std"]])


def write_hf_folder(state_dict: dict[str, torch.Tensor], config: dict, out: Path) -> None:
    """Write ``HF_FILES`` into ``out``: ``state_dict`` (our model's keys) and the export settings ``config``."""
    hf = hf_config(config)
    hf.architectures = [SlowFastForVideoClassification.__name__]
    hf.auto_map = {"AutoModelForVideoClassification": f"{Path(CODE_FILE).stem}.{hf.architectures[0]}"}
    hf.save_pretrained(out)  # config.json (auto_map gains AutoConfig) and the code file
    # Bytes written as a plain file: safetensors' save_file creates it with mode 0600, whatever the umask.
    weights = {PREFIX + key: value.contiguous() for key, value in state_dict.items()}
    (out / WEIGHTS_FILE).write_bytes(save(weights, metadata={"format": "pt"}))
    video_processor(config).save_pretrained(out)


def read_export(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The weights (our model's keys) and the export settings of an export folder, either layout."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    state = load_file(str(folder / WEIGHTS_FILE))
    if config.get("model_type") != SlowFastConfig.model_type:  # the layout before transformers' files
        return state, config
    return {key.removeprefix(PREFIX): value for key, value in state.items()}, config["accel_slowfast"]
