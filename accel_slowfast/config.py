"""The recipe: every training setting, its default and its meaning, in one dataclass.

Defaults train ``slowfast_tiny`` on the built-in synthetic dataset (a few minutes on 2 CPU
cores). A YAML recipe lists only what differs; ``--key=value`` overrides win over the YAML:

    accelerate launch train.py recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4

``load_recipe`` fails before any work on unknown keys, wrong types (YAML reads ``1e-4`` as a
string: write ``1.0e-4``) and impossible combinations, naming the key and the fix.
"""

import dataclasses
import difflib
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from accel_slowfast.data.decoding import DECODERS
from accel_slowfast.models import PRESETS
from accel_slowfast.schedules import LR_POLICIES, WARMUPS

DATASETS = ("synthetic", "ucf101", "list")
MIXED_PRECISION = ("no", "fp16", "bf16")
OPTIMIZERS = ("sgd", "adamw")
REPORT_TO = ("none", "wandb", "tensorboard", "all")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


class RecipeError(ValueError):
    """A recipe key has a wrong value; the message names the key and the fix."""


@dataclass
class Recipe:
    # --- run ---
    work_dir: str = _f("work_dirs/synthetic_slowfast_tiny", "Folder for logs, metrics.jsonl, checkpoints/.")
    seed: int = _f(0, "Seed for weights, shuffling and augmentation.")
    deterministic: bool = _f(False, "Use deterministic algorithms (bitwise repeatable on CPU; warn-only on CUDA).")
    # --- model ---
    model: str = _f("slowfast_tiny", f"Model preset: {', '.join(sorted(PRESETS))}.")
    num_classes: int = _f(5, "Number of classes of the classification head.")
    dropout: float = _f(0.5, "Dropout before the final linear layer.")
    # --- data ---
    dataset: str = _f("synthetic", f"Dataset kind: {', '.join(DATASETS)}.")
    data_root: str = _f("", "Video folder (ucf101: the UCF-101 folder). Empty for synthetic: generated into the cache.")
    annotation_dir: str = _f("", "ucf101: the ucfTrainTestlist folder. Empty for synthetic.")
    split: int = _f(1, "ucf101: official split 1, 2 or 3 (train on trainlist0N, validate on testlist0N).")
    train_list: str = _f("", "list: mmaction2 list file ('relative/path.avi label', 0-based) for training.")
    val_list: str = _f("", "list: mmaction2 list file for validation.")
    decoder: str = _f("pyav", f"Video decoder: {', '.join(sorted(DECODERS))} (see accel_slowfast/data/decoding.py).")
    clip_len: int = _f(16, "Frames per clip (the fast pathway's length); a multiple of the model's alpha.")
    frame_interval: int = _f(2, "Source frames between two sampled frames.")
    short_side: int = _f(56, "Frames are resized so their short side has this length.")
    crop_size: int = _f(56, "Side of the square crop fed to the model.")
    crop_area_min: float = _f(0.5, "Smallest RandomResizedCrop area, as a fraction of the frame (seed: 0.08).")
    flip_ratio: float = _f(0.5, "Probability of a horizontal flip in training.")
    mean: list[float] = _f([123.675, 116.28, 103.53], "RGB mean on the 0-255 scale.")
    std: list[float] = _f([58.395, 57.12, 57.375], "RGB std on the 0-255 scale.")
    batch_size: int = _f(16, "Clips per device per iteration.")
    num_workers: int = _f(2, "Data loading processes per device.")
    # --- optimisation ---
    max_epochs: int = _f(10, "Training epochs.")
    optimizer: str = _f("adamw", f"Optimizer: {', '.join(OPTIMIZERS)} (the seed uses sgd).")
    lr: float = _f(4.0e-3, "Learning rate (for base_batch_size clips per step when that is set).")
    base_batch_size: int = _f(0, "If > 0, scale lr by (processes x batch_size x accumulation) / base_batch_size.")
    momentum: float = _f(0.9, "sgd: momentum.")
    weight_decay: float = _f(1.0e-4, "Weight decay (applied to every parameter, as the seed does).")
    grad_clip: float = _f(40.0, "Max L2 norm of the gradients; 0 disables clipping.")
    lr_policy: str = _f("cosine", f"LR policy: {', '.join(LR_POLICIES)}.")
    by_epoch: bool = _f(True, "Update the regular LR once per epoch (mmcv's by_epoch) instead of every iteration.")
    lr_steps: list[int] = _f([], "step: milestones (epochs when by_epoch, else iterations).")
    lr_gamma: float = _f(0.1, "step: LR factor at each milestone.")
    min_lr: float = _f(0.0, "cosine: final LR; step: LR floor.")
    warmup: str = _f("linear", f"Warmup: {', '.join(WARMUPS)}.")
    warmup_epochs: int = _f(1, "Warmup length in epochs (applied per iteration).")
    warmup_ratio: float = _f(0.1, "LR factor at the first warmup iteration.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    mixed_precision: str = _f("no", f"Mixed precision: {', '.join(MIXED_PRECISION)}.")
    # --- hooks ---
    log_interval: int = _f(5, "Write a train record every this many iterations.")
    eval_interval: int = _f(2, "Evaluate every this many epochs (and after the last one).")
    checkpoint_interval: int = _f(5, "Save a resumable checkpoint every this many epochs (and after the last one).")
    max_keep_ckpts: int = _f(2, "Keep this many newest epoch checkpoints; 0 keeps all.")
    resume_from: str = _f("", "Checkpoint folder to resume everything from, or 'auto' for the newest in work_dir.")
    load_from: str = _f("", "Weights to start from (non-strict; skipped keys are reported).")
    report_to: str = _f("none", f"Trackers: {', '.join(REPORT_TO)}.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_type(f.name, getattr(self, f.name), f.type))
        self.validate()

    def validate(self) -> None:
        """Check choices and combinations; raise ``RecipeError`` naming the key."""
        choices = {"model": sorted(PRESETS), "dataset": DATASETS, "lr_policy": LR_POLICIES, "warmup": WARMUPS,
                   "mixed_precision": MIXED_PRECISION, "report_to": REPORT_TO, "optimizer": OPTIMIZERS,
                   "decoder": sorted(DECODERS)}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise RecipeError(f"recipe key '{key}' is {getattr(self, key)!r}; choose one of {list(allowed)}")
        for key in ("num_classes", "clip_len", "frame_interval", "short_side", "crop_size", "batch_size",
                    "max_epochs", "gradient_accumulation_steps", "log_interval", "eval_interval",
                    "checkpoint_interval"):
            if getattr(self, key) < 1:
                raise RecipeError(f"recipe key '{key}' must be >= 1, got {getattr(self, key)}")
        for key in ("num_workers", "max_keep_ckpts", "base_batch_size", "warmup_epochs", "grad_clip", "min_lr",
                    "weight_decay", "lr"):
            if getattr(self, key) < 0:
                raise RecipeError(f"recipe key '{key}' must be >= 0, got {getattr(self, key)}")
        alpha = PRESETS[self.model].alpha
        if self.clip_len % alpha:
            raise RecipeError(f"recipe key 'clip_len' ({self.clip_len}) must be a multiple of {self.model}'s alpha "
                              f"({alpha}); try clip_len={max(alpha, self.clip_len // alpha * alpha)}")
        if self.crop_size > self.short_side:
            raise RecipeError(f"recipe key 'crop_size' ({self.crop_size}) exceeds 'short_side' ({self.short_side})")
        if not 0 < self.crop_area_min <= 1 or not 0 <= self.flip_ratio <= 1:
            raise RecipeError("recipe keys 'crop_area_min' must be in (0, 1] and 'flip_ratio' in [0, 1]")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise RecipeError("recipe keys 'mean' and 'std' need 3 values (RGB) and a positive std")
        if self.dataset == "ucf101" and not (self.data_root and self.annotation_dir):
            raise RecipeError("dataset 'ucf101' needs 'data_root' (the UCF-101 folder) and 'annotation_dir' "
                              "(the ucfTrainTestlist folder)")
        if self.dataset == "ucf101" and self.split not in (1, 2, 3):
            raise RecipeError(f"recipe key 'split' must be 1, 2 or 3 for ucf101, got {self.split}")
        if self.dataset == "list" and not (self.train_list and self.val_list):
            raise RecipeError("dataset 'list' needs 'train_list' and 'val_list' (mmaction2 list files)")
        if self.lr_policy == "step" and not self.lr_steps:
            raise RecipeError("lr_policy 'step' needs 'lr_steps', e.g. --lr_steps 90 130")
        if self.warmup != "none" and self.warmup_epochs == 0:
            raise RecipeError(f"warmup '{self.warmup}' needs 'warmup_epochs' > 0 (or set warmup: none)")
        if self.warmup_epochs > self.max_epochs:
            raise RecipeError(f"'warmup_epochs' ({self.warmup_epochs}) exceeds 'max_epochs' ({self.max_epochs})")
        if self.resume_from and self.load_from:
            raise RecipeError("set either 'resume_from' (continue a run) or 'load_from' (start from weights), not both")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` as ``annotation`` (int widened to float) or raise ``RecipeError``."""
    hint = typing.get_type_hints(Recipe)[key] if isinstance(annotation, str) else annotation
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        (item_type,) = typing.get_args(hint)[:1]
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"recipe key '{key}' must be a list of {item_type.__name__}, got {value!r}")
        return [check_type(key, item, item_type) for item in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        note = ""
        if hint is float and isinstance(value, str):
            note = " YAML reads numbers like 1e-4 as strings: write 1.0e-4."
        raise RecipeError(f"recipe key '{key}' must be {hint.__name__}, got {value!r} ({type(value).__name__}).{note}")
    return value


def _parser() -> HfArgumentParser:
    usage = "Train SlowFast: train.py [RECIPE.yaml] [--key=value ...]"
    return HfArgumentParser(Recipe, allow_abbrev=False, description=usage)


def load_recipe(argv: list[str] | None = None) -> Recipe:
    """Parse ``[RECIPE.yaml] [--key=value ...]`` (``sys.argv[1:]`` by default) into a ``Recipe``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    known = {f.name: f.type for f in dataclasses.fields(Recipe)}
    if argv and not argv[0].startswith("-"):
        path = Path(argv.pop(0))
        if not path.is_file():
            raise RecipeError(f"recipe file {path} does not exist")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise RecipeError(f"{path}: a recipe is a mapping of 'key: value' lines")
        for key, value in values.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else "; `train.py --help` lists every key"
                raise RecipeError(f"{path}: unknown recipe key '{key}'{hint}")
            try:
                check_type(key, value, known[key])
            except RecipeError as error:
                raise RecipeError(f"{path}: {error}") from None
        parser.set_defaults(**values)
    recipe, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        raise RecipeError(f"unknown command-line arguments {remaining}; `train.py --help` lists every key")
    return recipe


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
