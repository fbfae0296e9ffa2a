"""The recipe: every training setting, its default and its meaning, in one dataclass.

Defaults train ``slowfast_tiny`` on the built-in synthetic dataset (a few minutes on 2 CPU
cores). A YAML recipe lists only what differs; ``--key=value`` overrides win over the YAML:

    accel-slowfast train recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4
    accel-slowfast train --help                   # every key by group, with its default

``load_recipe`` fails before any work on unknown keys (with the closest key's name), wrong types
(YAML reads ``1e-4`` as a string: write ``1.0e-4``) and impossible combinations, naming the key and
the fix, in one line. This module imports no torch, so ``--help`` and those errors come at once.
"""

import argparse
import copy
import dataclasses
import difflib
import importlib.util
import math
import re
import shutil
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from accel_slowfast.errors import RecipeError
from accel_slowfast.presets import IMAGENET_MEAN, IMAGENET_STD, NUM_STAGES, PRESETS
from accel_slowfast.schedules import ANNEAL_STRATEGIES, COSINE_POLICIES, LR_POLICIES, MOMENTUM_POLICIES, WARMUPS

AVERAGE_CLIPS = ("prob", "score")  # data/views.py: mean of the views' softmax, or of their logits
DATASETS = ("synthetic", "ucf101", "hmdb51", "list", "folder")
DECODERS = ("pyav", "fast")  # the names of data/decoding.py's DECODERS
DUPLICATE_VIDEOS = ("keep", "drop")  # what the index readers do with a video listed twice
MIXED_PRECISION = ("", "no", "fp16", "bf16")
OPTIMIZERS = ("sgd", "adamw")
REPORT_TO = ("none", "wandb", "tensorboard", "all")

RUN, MODEL, DATA, AUGMENT, TEST = "run", "model", "data", "augmentation", "evaluation and test"
OPTIM, CHECKPOINT, LOGGING, PERF = "optimisation and schedule", "checkpointing and resume", "logging", "performance"
GROUPS = (RUN, MODEL, DATA, AUGMENT, TEST, OPTIM, CHECKPOINT, LOGGING, PERF)  # --help's sections, in this order


def _f(default: Any, help: str, group: str) -> Any:
    """A recipe field: its default, and the line and section it gets in ``--help``."""
    metadata = {"help": help, "group": group}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Recipe:
    work_dir: str = _f("work_dirs/synthetic_slowfast_tiny", "Folder for logs, metrics.jsonl, checkpoints/.", RUN)
    seed: int = _f(0, "Seed for weights, shuffling and augmentation.", RUN)
    deterministic: bool = _f(False, "Use deterministic algorithms (bitwise repeatable on CPU; warn-only on CUDA).", RUN)
    model: str = _f("slowfast_tiny", f"Model preset: {', '.join(sorted(PRESETS))}.", MODEL)
    num_classes: int = _f(5, "Number of classes of the classification head.", MODEL)
    frozen_stages: int = _f(-1, "Freeze the stems and res stages 1..k of both pathways (BN in eval mode); "
                                "-1 freezes nothing, 4 trains the classifier only (linear probing).", MODEL)
    dropout: float = _f(0.5, "Dropout before the final linear layer.", MODEL)
    dataset: str = _f("synthetic", f"Dataset kind: {', '.join(DATASETS)}.", DATA)
    data_root: str = _f("", "Video folder (ucf101: UCF-101; hmdb51: <class>/ folders; folder: holds train/<class>/ "
                            "and val/<class>/). Empty for synthetic: generated into the cache.", DATA)
    annotation_dir: str = _f("", "ucf101: the ucfTrainTestlist folder; hmdb51: the *_test_split<N>.txt folder.", DATA)
    split: int = _f(1, "ucf101/hmdb51: official split 1, 2 or 3 (validation uses the split's test list).", DATA)
    train_list: str = _f("", "list: mmaction2 list / Kinetics CSV ('relative/path.avi label', 0-based) for "
                             "training.", DATA)
    val_list: str = _f("", "list: mmaction2 list file for validation.", DATA)
    index_cache_shared: bool = _f(False, "The probed-index cache ($ACCEL_SLOWFAST_CACHE/index, default "
                                         "~/.cache/accel_slowfast/index) is on storage every node sees: the main "
                                         "process alone probes. False: the first process of each node probes.", DATA)
    duplicate_videos: str = _f("keep", "A video listed twice in one list (reported either way): keep (trained as often "
                                       "as listed, as mmaction2 does) or drop (each video once).", DATA)
    decoder: str = _f("pyav", f"Video decoder: {', '.join(DECODERS)} (both return the same frames; see "
                              "accel_slowfast/data/decoding.py).", PERF)
    clip_len: int = _f(16, "Frames per clip (the fast pathway's length); a multiple of the model's alpha.", DATA)
    frame_interval: int = _f(2, "Source frames between two sampled frames.", DATA)
    short_side: int = _f(56, "Validation/test frames are resized to this short side (training crops are "
                             "scale-free).", AUGMENT)
    crop_size: int = _f(56, "Side of the square crop fed to the model.", AUGMENT)
    short_side_jitter: list[int] = _f([], "Train with PySlowFast's scale jitter: random short side in [min, max], "
                                          "then a random crop (instead of RandomResizedCrop), e.g. "
                                          "[256, 320].", AUGMENT)
    crop_area_min: float = _f(0.5, "Smallest RandomResizedCrop area, as a fraction of the frame (seed: 0.08).", AUGMENT)
    flip_ratio: float = _f(0.5, "Probability of a horizontal flip in training.", AUGMENT)
    mean: list[float] = _f(list(IMAGENET_MEAN), "RGB mean on the 0-255 scale (the model normalizes with it).", MODEL)
    std: list[float] = _f(list(IMAGENET_STD), "RGB std on the 0-255 scale.", MODEL)
    num_clips: int = _f(10, "Test: clips per video, spread uniformly (mmaction2's test sampling).", TEST)
    num_crops: int = _f(3, "Test: spatial crops per clip, 1 (centre) or 3 (both ends and centre of the long "
                           "side).", TEST)
    test_crop_size: int = _f(56, "Test: crop side after the short-side resize (the seed: 256, the full short "
                                 "side).", TEST)
    average_clips: str = _f("prob", "Test: average the views' softmax ('prob', the seed's) or logits ('score').", TEST)
    batch_size: int = _f(16, "Clips per device per iteration.", OPTIM)
    num_workers: int = _f(2, "Data loading processes per device.", PERF)
    max_epochs: int = _f(10, "Training epochs.", OPTIM)
    optimizer: str = _f("adamw", f"Optimizer: {', '.join(OPTIMIZERS)} (the seed uses sgd).", OPTIM)
    lr: float = _f(4.0e-3, "Learning rate (for base_batch_size clips per step when that is set); one-cycle: its "
                           "peak.", OPTIM)
    base_batch_size: int = _f(0, "If > 0, scale lr by (processes x batch_size x accumulation) / "
                                 "base_batch_size.", OPTIM)
    momentum: float = _f(0.9, "sgd: momentum (the start of momentum_policy).", OPTIM)
    weight_decay: float = _f(1.0e-4, "Weight decay (applied to every parameter, as the seed does).", OPTIM)
    grad_clip: float = _f(40.0, "Max L2 norm of the gradients; 0 disables clipping.", OPTIM)
    lr_policy: str = _f("cosine", f"LR policy (mmcv's, see accel_slowfast/schedules.py): "
                                  f"{', '.join(LR_POLICIES)}.", OPTIM)
    by_epoch: bool = _f(True, "Update the regular LR and momentum once per epoch (mmcv's by_epoch) instead of every "
                              "iteration; one-cycle and cyclic momentum are always per iteration.", OPTIM)
    lr_steps: list[int] = _f([], "step: increasing milestones (epochs when by_epoch, else iterations).", OPTIM)
    lr_step_every: int = _f(0, "step: decay every this many epochs (iterations if not by_epoch) instead of "
                               "lr_steps.", OPTIM)
    lr_gamma: float = _f(0.1, "step: LR factor per decay; exp: LR factor per epoch/iteration; inv: its gamma.", OPTIM)
    lr_power: float = _f(1.0, "poly, inv: the exponent.", OPTIM)
    min_lr: float = _f(0.0, "cosine, flat-cosine, cosine-restart, poly: final LR; step: LR floor.", OPTIM)
    min_lr_ratio: float = _f(0.0, "cosine, flat-cosine, cosine-restart: if > 0, final LR = lr x min_lr_ratio "
                                  "(instead of min_lr).", OPTIM)
    flat_cosine_start: float = _f(0.75, "flat-cosine: fraction of training at constant lr before the cosine "
                                        "starts.", OPTIM)
    restart_periods: list[int] = _f([], "cosine-restart: length of each cosine cycle (epochs, or iterations if not "
                                        "by_epoch); together at least the whole run.", OPTIM)
    restart_weights: list[float] = _f([], "cosine-restart: peak of each cycle as a fraction of lr (empty: all "
                                          "1.0).", OPTIM)
    one_cycle_pct_start: float = _f(0.3, "one-cycle: part of the cycle rising from lr / div_factor to lr (its "
                                         "peak).", OPTIM)
    one_cycle_anneal: str = _f("cos", "one-cycle: annealing shape, cos or linear.", OPTIM)
    one_cycle_div_factor: float = _f(25.0, "one-cycle: the cycle starts at lr / one_cycle_div_factor.", OPTIM)
    one_cycle_final_div_factor: float = _f(1.0e4, "one-cycle: the cycle ends at its start LR / this.", OPTIM)
    one_cycle_three_phase: bool = _f(False, "one-cycle: fall back to the start LR, then anneal in a third "
                                            "phase.", OPTIM)
    one_cycle_total_steps: int = _f(0, "one-cycle: iterations of the cycle; 0 = the run's (never fewer).", OPTIM)
    warmup: str = _f("linear", f"Warmup: {', '.join(WARMUPS)} (one-cycle needs none: it has its own rise).", OPTIM)
    warmup_epochs: int = _f(1, "Warmup length in epochs (applied per iteration); ignored when warmup_iters > 0.", OPTIM)
    warmup_iters: int = _f(0, "Warmup length in iterations (mmcv's warmup_by_epoch=False); if > 0, replaces "
                              "warmup_epochs.", OPTIM)
    warmup_ratio: float = _f(0.1, "LR factor at the first warmup iteration, in (0, 1].", OPTIM)
    momentum_policy: str = _f("none", f"Momentum schedule (mmcv's): {', '.join(MOMENTUM_POLICIES)}; sets sgd's "
                                      "momentum or adamw's beta1, from its initial value.", OPTIM)
    momentum_steps: list[int] = _f([], "momentum step: increasing milestones (in by_epoch's unit).", OPTIM)
    momentum_step_every: int = _f(0, "momentum step: decay every this many epochs/iterations, instead of steps.", OPTIM)
    momentum_gamma: float = _f(0.5, "momentum step: momentum factor per decay.", OPTIM)
    min_momentum: float = _f(0.0, "momentum step: floor; momentum cosine: final momentum.", OPTIM)
    min_momentum_ratio: float = _f(0.0, "momentum cosine: if > 0, final momentum = initial x this (instead of "
                                        "min_momentum).", OPTIM)
    momentum_target_ratio: list[float] = _f([0.85 / 0.95, 1.0], "momentum cyclic: [lowest, end] momentum of each "
                                                                "cycle as fractions of the initial one.", OPTIM)
    momentum_cyclic_times: int = _f(1, "momentum cyclic: cycles over the run.", OPTIM)
    momentum_step_ratio_up: float = _f(0.4, "momentum cyclic: fraction of each cycle going down to the lowest.", OPTIM)
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.", OPTIM)
    channels_last: bool = _f(False, "Train in torch.channels_last_3d memory format (model and inputs); faster "
                                    "convolutions on GPUs with tensor cores, usually with mixed_precision.", PERF)
    compile: bool = _f(False, "torch.compile the model (in place, so checkpoint keys are unchanged); needs Triton "
                              "on GPU or a C++ compiler on CPU; the first iterations are slow while it compiles.", PERF)
    mixed_precision: str = _f("", "Mixed precision: no, fp16 or bf16. Empty (the default) leaves it to Accelerate: "
                                  "accelerate launch --mixed_precision, accelerate config, ACCELERATE_MIXED_PRECISION.",
                              PERF)
    log_interval: int = _f(5, "Write a train record every this many iterations.", LOGGING)
    eval_interval: int = _f(2, "Evaluate every this many epochs (and after the last one).", TEST)
    workflow: list[str] = _f(["train:1"], "mmcv's workflow as mode:epochs, e.g. train:2 val:1 (val: validation "
                                          "loss).", RUN)
    checkpoint_interval: int = _f(5, "Save a resumable checkpoint every this many epochs (and after the last "
                                     "one).", CHECKPOINT)
    skip_nonfinite_loss: bool = _f(False, "Skip the optimizer step on a NaN/inf loss instead of stopping the "
                                          "run.", OPTIM)
    checkpoint_interval_iters: int = _f(0, "Also save one every this many iterations (resume mid-epoch); 0: "
                                           "never.", CHECKPOINT)
    max_keep_ckpts: int = _f(2, "Keep this many newest epoch checkpoints; 0 keeps all.", CHECKPOINT)
    resume_from: str = _f("", "Checkpoint folder to resume everything from, or 'auto' for the newest intact one in "
                              "work_dir (damaged ones are skipped with a warning).", CHECKPOINT)
    resume_next_epoch: bool = _f(False, "When a mid-epoch checkpoint cannot continue its epoch exactly (batch_size, "
                                        "gradient_accumulation_steps, seed or the process count changed), skip the "
                                        "rest of that epoch and continue with the next one instead of "
                                        "stopping.", CHECKPOINT)
    load_from: str = _f("", "Weights to start from (non-strict; skipped keys are reported).", CHECKPOINT)
    ema: bool = _f(False, "Keep an exponential moving average of the weights (mmcv's EMAHook): evaluation, the best "
                          "checkpoint, epoch checkpoints and the final model use it.", OPTIM)
    ema_momentum: float = _f(2.0e-4, "ema: weight m of the new weights per update, ema = (1 - m) * ema + m * "
                                     "weights.", OPTIM)
    ema_interval: int = _f(1, "ema: update every this many iterations (with momentum ema_momentum ** "
                              "ema_interval).", OPTIM)
    ema_warm_up: int = _f(100, "ema: the momentum at iteration i is at most (1 + i) / (ema_warm_up + i).", OPTIM)
    precise_bn_batches: int = _f(0, "Before each evaluation, set BatchNorm statistics to their average over this many "
                                    "training batches per process (PySlowFast's precise BN, which uses 200); 0: "
                                    "off.", TEST)
    sync_bn: bool = _f(False, "Convert BatchNorm to SyncBatchNorm (statistics over every process's batch); GPU "
                              "processes only, skipped with one process.", PERF)
    early_stop_metric: str = _f("", "Stop when this validation metric (top1_acc, top5_acc, mean_class_accuracy) has "
                                    "not improved for early_stop_patience evaluations; empty: never.", TEST)
    early_stop_patience: int = _f(5, "early_stop_metric: evaluations without improvement before the run stops.", TEST)
    early_stop_rule: str = _f("greater", "early_stop_metric: 'greater' or 'less' is better.", TEST)
    empty_cache: str = _f("none", "torch.cuda.empty_cache(): none, epoch (after every epoch) or iter (also after "
                                  "every iteration); nothing on CPU.", PERF)
    profile_iters: list[int] = _f([], "torch.profiler over the first iterations: [active] or [wait, warmup, active]; "
                                      "writes a Chrome trace to <work_dir>/profiler/ (main process). Empty: off.", PERF)
    report_to: str = _f("none", f"Trackers: {', '.join(REPORT_TO)} (all = wandb + tensorboard); see "
                                "accel_slowfast/trackers.py.", LOGGING)
    wandb_project: str = _f("accel_slowfast", "wandb project name.", LOGGING)
    wandb_entity: str = _f("", "wandb entity (user or team); empty: your default entity.", LOGGING)
    run_name: str = _f("", "Tracker run name; empty: the work_dir's folder name.", LOGGING)
    wandb_tags: list[str] = _f([], "wandb run tags, e.g. --wandb_tags ucf101 r50.", LOGGING)
    log_val_clips: int = _f(4, "wandb: validation clips shown with true and predicted labels per evaluation; 0: "
                               "none.", LOGGING)
    log_checkpoint: bool = _f(True, "wandb: upload the best checkpoint as a model artifact at the end of the "
                                    "run.", LOGGING)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_type(f.name, getattr(self, f.name), f.type))
        self.validate()

    def validate(self) -> None:
        """Check choices and combinations; raise ``RecipeError`` naming the key."""
        for f in dataclasses.fields(self):
            values = getattr(self, f.name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, float) and not math.isfinite(value):
                    raise RecipeError(f"recipe key '{f.name}' must be a finite number, got {value}")
        choices = {"model": sorted(PRESETS), "dataset": DATASETS, "lr_policy": LR_POLICIES, "warmup": WARMUPS,
                   "mixed_precision": MIXED_PRECISION, "report_to": REPORT_TO, "optimizer": OPTIMIZERS,
                   "decoder": sorted(DECODERS), "duplicate_videos": DUPLICATE_VIDEOS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise RecipeError(f"recipe key '{key}' is {getattr(self, key)!r}; choose one of {list(allowed)}")
        for key in ("num_classes", "clip_len", "frame_interval", "short_side", "crop_size", "batch_size", "num_clips",
                    "max_epochs", "gradient_accumulation_steps", "log_interval", "eval_interval",
                    "checkpoint_interval"):
            if getattr(self, key) < 1:
                raise RecipeError(f"recipe key '{key}' must be >= 1, got {getattr(self, key)}")
        for key in ("num_workers", "max_keep_ckpts", "checkpoint_interval_iters", "base_batch_size",
                    "warmup_epochs", "grad_clip", "min_lr", "weight_decay", "lr"):
            if getattr(self, key) < 0:
                raise RecipeError(f"recipe key '{key}' must be >= 0, got {getattr(self, key)}")
        if not -1 <= self.frozen_stages <= NUM_STAGES:
            raise RecipeError(f"recipe key 'frozen_stages' must be in [-1, {NUM_STAGES}] (-1: train everything, "
                              f"{NUM_STAGES}: linear probing), got {self.frozen_stages}")
        alpha = PRESETS[self.model].alpha
        if self.clip_len % alpha:
            raise RecipeError(f"recipe key 'clip_len' ({self.clip_len}) must be a multiple of {self.model}'s alpha "
                              f"({alpha}); try clip_len={max(alpha, self.clip_len // alpha * alpha)}")
        if self.short_side_jitter and (len(self.short_side_jitter) != 2 or
                                       not self.crop_size <= self.short_side_jitter[0] <= self.short_side_jitter[1]):
            raise RecipeError(f"recipe key 'short_side_jitter' must be [min, max] with crop_size <= min <= max, "
                              f"got {self.short_side_jitter}")
        for phase in self.workflow:
            mode, _, epochs = phase.partition(":")
            if mode not in ("train", "val") or not epochs.isdigit() or int(epochs) < 1:
                raise RecipeError(f"recipe key 'workflow' has {phase!r}; write mode:epochs with mode train or val, "
                                  "e.g. --workflow train:2 val:1")
        if not any(phase.startswith("train:") for phase in self.workflow):
            raise RecipeError("recipe key 'workflow' needs a train phase, e.g. --workflow train:1")
        if self.num_crops not in (1, 3):
            raise RecipeError(f"recipe key 'num_crops' must be 1 or 3, got {self.num_crops}")
        if self.average_clips not in AVERAGE_CLIPS:
            raise RecipeError(f"recipe key 'average_clips' is {self.average_clips!r}; choose one of {AVERAGE_CLIPS}")
        if self.test_crop_size > self.short_side:
            raise RecipeError(f"recipe key 'test_crop_size' ({self.test_crop_size}) exceeds 'short_side' "
                              f"({self.short_side})")
        if self.crop_size > self.short_side:
            raise RecipeError(f"recipe key 'crop_size' ({self.crop_size}) exceeds 'short_side' ({self.short_side})")
        if not 0 < self.crop_area_min <= 1 or not 0 <= self.flip_ratio <= 1:
            raise RecipeError("recipe keys 'crop_area_min' must be in (0, 1] and 'flip_ratio' in [0, 1]")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise RecipeError("recipe keys 'mean' and 'std' need 3 values (RGB) and a positive std")
        if self.dataset in ("ucf101", "hmdb51") and not (self.data_root and self.annotation_dir):
            raise RecipeError(f"dataset '{self.dataset}' needs 'data_root' (the video folder) and 'annotation_dir' "
                              "(the split files' folder)")
        if self.dataset in ("ucf101", "hmdb51") and self.split not in (1, 2, 3):
            raise RecipeError(f"recipe key 'split' must be 1, 2 or 3 for {self.dataset}, got {self.split}")
        if self.dataset == "folder" and not self.data_root:
            raise RecipeError("dataset 'folder' needs 'data_root' holding train/<class>/ and val/<class>/")
        if self.dataset == "list" and not (self.train_list and self.val_list):
            raise RecipeError("dataset 'list' needs 'train_list' and 'val_list' (mmaction2 list files)")
        self._validate_schedules()
        if self.log_val_clips < 0:
            raise RecipeError(f"recipe key 'log_val_clips' must be >= 0, got {self.log_val_clips}")
        if self.report_to in ("wandb", "tensorboard", "all") and not self.wandb_project:
            raise RecipeError("recipe key 'wandb_project' is empty; name a project (e.g. --wandb_project=slowfast)")
        for tracker, package in (("wandb", "wandb"), ("tensorboard", "tensorboard")):
            if self.report_to in (tracker, "all") and importlib.util.find_spec(package) is None:
                raise RecipeError(f"report_to '{self.report_to}' needs the {package} package: pip install {package} "
                                  "(or set --report_to=none)")
        if self.compile and not (importlib.util.find_spec("triton") or shutil.which("g++") or shutil.which("clang++")):
            raise RecipeError("recipe key 'compile' needs Triton (GPU) or a C++ compiler (CPU), found neither; "
                              "install one or set --compile=false")
        if self.resume_from and self.load_from:
            raise RecipeError("set either 'resume_from' (continue a run) or 'load_from' (start from weights), not both")
        if self.ema and not 0 < self.ema_momentum < 1:
            raise RecipeError(f"recipe key 'ema_momentum' must be in (0, 1) (mmcv: 2.0e-4), got {self.ema_momentum}")
        for key in ("ema_interval", "ema_warm_up", "early_stop_patience"):
            if getattr(self, key) < 1:
                raise RecipeError(f"recipe key '{key}' must be >= 1, got {getattr(self, key)}")
        if self.precise_bn_batches < 0:
            raise RecipeError(f"recipe key 'precise_bn_batches' must be >= 0 (0: off), got {self.precise_bn_batches}")
        for key, allowed in (("early_stop_metric", ("", "top1_acc", "top5_acc", "mean_class_accuracy")),
                             ("early_stop_rule", ("greater", "less")), ("empty_cache", ("none", "epoch", "iter"))):
            if getattr(self, key) not in allowed:
                raise RecipeError(f"recipe key '{key}' is {getattr(self, key)!r}; choose one of {list(allowed)}")
        if len(self.profile_iters) not in (0, 1, 3) or self.profile_iters and (
                min(self.profile_iters) < 0 or self.profile_iters[-1] < 1):
            raise RecipeError(f"recipe key 'profile_iters' must be [active] or [wait, warmup, active], active >= 1 "
                              f"(e.g. --profile_iters 1 1 3); got {self.profile_iters}")

    def _validate_schedules(self) -> None:
        """The LR, warmup and momentum keys (formulas in ``accel_slowfast/schedules.py``)."""
        for key, allowed in (("momentum_policy", MOMENTUM_POLICIES), ("one_cycle_anneal", ANNEAL_STRATEGIES)):
            if getattr(self, key) not in allowed:
                raise RecipeError(f"recipe key '{key}' is {getattr(self, key)!r}; choose one of {list(allowed)}")
        for key in ("lr_step_every", "min_lr_ratio", "warmup_iters", "one_cycle_total_steps", "momentum_step_every",
                    "min_momentum", "min_momentum_ratio"):
            if getattr(self, key) < 0:
                raise RecipeError(f"recipe key '{key}' must be >= 0, got {getattr(self, key)}")
        for key in ("lr_gamma", "lr_power", "one_cycle_div_factor", "one_cycle_final_div_factor", "momentum_gamma",
                    "momentum_cyclic_times"):
            if getattr(self, key) <= 0:
                raise RecipeError(f"recipe key '{key}' must be > 0, got {getattr(self, key)}")
        for key in ("flat_cosine_start", "momentum_step_ratio_up"):
            if not 0 <= getattr(self, key) < 1:
                raise RecipeError(f"recipe key '{key}' must be in [0, 1), got {getattr(self, key)}")
        if not 0 <= self.one_cycle_pct_start <= 1:
            raise RecipeError(f"recipe key 'one_cycle_pct_start' must be in [0, 1], got {self.one_cycle_pct_start}")
        for policy_key, steps_key, every_key in (("lr_policy", "lr_steps", "lr_step_every"),
                                                 ("momentum_policy", "momentum_steps", "momentum_step_every")):
            steps, every = getattr(self, steps_key), getattr(self, every_key)
            if getattr(self, policy_key) != "step":
                continue
            if not steps and not every:
                raise RecipeError(f"{policy_key} 'step' needs '{steps_key}' (milestones, e.g. --{steps_key} 90 130) "
                                  f"or '{every_key}' (a decay interval, e.g. --{every_key} 30)")
            if steps and every:
                raise RecipeError(f"set '{steps_key}' (milestones) or '{every_key}' (an interval), not both")
            if steps != sorted(set(steps)) or min(steps, default=1) < 1:
                raise RecipeError(f"recipe key '{steps_key}' must be positive and increasing, got {steps}")
        for policy_key, cosine, min_key, ratio_key in (("lr_policy", COSINE_POLICIES, "min_lr", "min_lr_ratio"),
                                                       ("momentum_policy", ("cosine",), "min_momentum",
                                                        "min_momentum_ratio")):
            if getattr(self, ratio_key) > 0 and getattr(self, policy_key) not in cosine:
                raise RecipeError(f"recipe key '{ratio_key}' applies to {policy_key} {' / '.join(cosine)} only; "
                                  f"for '{getattr(self, policy_key)}' use '{min_key}' or set {ratio_key}: 0.0")
            if getattr(self, ratio_key) > 0 and getattr(self, min_key) > 0:
                raise RecipeError(f"set '{min_key}' (a value) or '{ratio_key}' (a fraction), not both")
        if self.lr_policy == "cosine-restart":
            periods = self.restart_periods
            if not periods or min(periods) < 1:
                raise RecipeError("lr_policy 'cosine-restart' needs 'restart_periods' (positive cycle lengths), "
                                  "e.g. --restart_periods 4 6")
            if self.restart_weights and len(self.restart_weights) != len(periods):
                raise RecipeError(f"recipe key 'restart_weights' needs one value per restart period ({len(periods)}), "
                                  "or none (all 1.0)")
            if self.by_epoch and sum(periods) < self.max_epochs:
                raise RecipeError(f"recipe key 'restart_periods' covers {sum(periods)} epochs but 'max_epochs' is "
                                  f"{self.max_epochs}; lengthen the last period or add one")
        if self.lr_policy == "one-cycle" and self.warmup != "none":
            raise RecipeError("lr_policy 'one-cycle' rises from lr / one_cycle_div_factor by itself: set warmup: none")
        if self.warmup != "none" and self.warmup_epochs == 0 and self.warmup_iters == 0:
            raise RecipeError(f"warmup '{self.warmup}' needs 'warmup_epochs' > 0 or 'warmup_iters' > 0 "
                              "(or set warmup: none)")
        if self.warmup != "none" and not 0 < self.warmup_ratio <= 1:
            raise RecipeError(f"recipe key 'warmup_ratio' must be in (0, 1], got {self.warmup_ratio}")
        if self.warmup_iters == 0 and self.warmup_epochs > self.max_epochs:
            raise RecipeError(f"'warmup_epochs' ({self.warmup_epochs}) exceeds 'max_epochs' ({self.max_epochs})")
        if self.momentum_policy != "none" and self.optimizer == "sgd" and self.momentum == 0:
            raise RecipeError(f"momentum_policy '{self.momentum_policy}' scales sgd's 'momentum', which is 0; "
                              "set momentum (e.g. 0.9) or momentum_policy: none")
        if self.momentum_policy == "cyclic" and len(self.momentum_target_ratio) != 2:
            raise RecipeError("recipe key 'momentum_target_ratio' needs 2 values [lowest, end], "
                              "e.g. --momentum_target_ratio 0.85 1.0")

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


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``RecipeError`` line (the commands print ``error: ...``, exit 2)."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"(--\w+)/--[\w-]+", r"\1", message)  # HfArgumentParser's --key-with-hyphens alias
        wrong_type = re.fullmatch(r"argument --(\w+): invalid (\w+) value: (.*)", message)
        if wrong_type:  # worded as a recipe file's wrong type is
            key, kind, value = wrong_type.groups()
            message = f"recipe key '{key}' must be {kind}, got {value}"
        raise RecipeError(message)  # argparse would print the whole usage first


def recipe_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """``[RECIPE.yaml] [--key=value ...]``: transformers' ``HfArgumentParser`` over ``Recipe``, every
    field as ``--key`` in its ``--help`` group, with one-line errors.

    transformers is imported here, when a command line is read, not with ``Recipe`` (0.6 s).
    """
    from transformers import HfArgumentParser

    class RecipeParser(OneLineParser, HfArgumentParser):
        def _add_dataclass_arguments(self, dtype: type) -> None:
            # HfArgumentParser puts a dataclass's fields in one group; here each goes to its own.
            sections = {name: self.add_argument_group(name) for name in GROUPS}
            hints = typing.get_type_hints(dtype)
            for f in dataclasses.fields(dtype):
                argument = copy.copy(f)  # HfArgumentParser passes the metadata to add_argument as is
                hint = hints[f.name]
                argument.type, argument.metadata = hint, {"help": f.metadata["help"].replace("%", "%%")}
                if hint is not bool:  # (its --no_<key> twin takes no metavar)
                    item = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
                    argument.metadata["metavar"] = item.__name__.upper()
                self._parse_dataclass_field(sections[f.metadata["group"]], argument)

    parser = RecipeParser(
        Recipe, prog=prog, usage="%(prog)s [RECIPE.yaml] [--key=value ...]", allow_abbrev=False,
        description="The defaults, then RECIPE.yaml's keys, then --key=value overrides. A list takes several "
                    "values (--lr_steps 90 130), a bool true or false (--compile alone: true).")
    parser.add_argument("recipe", nargs="?", metavar="RECIPE.yaml",
                        help="a YAML file of the keys that differ from the defaults; a shipped recipe is also "
                             f"found by name: {', '.join(packaged_recipes())}")
    return parser


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, [f.name for f in dataclasses.fields(Recipe)], n=1)
    return f"unknown recipe key '{key}'" + (f"; did you mean '{close[0]}'?" if close else "; --help lists every key")


def packaged_recipes() -> list[str]:
    """The shipped recipes' names (``ucf101/slowfast_r50_4x16x1_256e.yaml``, ...)."""
    root = _recipes_dir()
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.yaml") if p.parent.name != "accelerate_configs")


def _recipes_dir() -> Path:
    # A wheel carries the recipes inside the package (setup.cfg maps recipes/ there); a checkout,
    # installed with -e or not, keeps them at its root.
    inside = Path(__file__).parent / "recipes"
    return inside if inside.is_dir() else Path(__file__).parents[1] / "recipes"


def find_recipe(name: str) -> Path:
    """The recipe file ``name``: a path, else a shipped recipe (``ucf101/x.yaml`` or ``recipes/ucf101/x.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("recipes",) else path.parts
    if parts and _recipes_dir().joinpath(*parts).is_file():
        return _recipes_dir().joinpath(*parts)
    raise RecipeError(f"recipe file {name} does not exist, nor is it a shipped recipe "
                      f"({', '.join(packaged_recipes())})")


def read_recipe_file(path: Path) -> dict[str, Any]:
    """The ``key: value`` mapping of a YAML recipe, each key known and each value of its field's type."""
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of 'key: value' lines")
    hints = typing.get_type_hints(Recipe)
    for key, value in values.items():
        if key not in hints:
            raise RecipeError(f"{path}: {_unknown_key(str(key))}")
        try:
            check_type(key, value, hints[key])
        except RecipeError as error:
            raise RecipeError(f"{path}: {error}") from None
    return values


def load_recipe(argv: list[str] | None = None, prog: str | None = None) -> Recipe:
    """Parse ``[RECIPE.yaml] [--key=value ...]`` (``sys.argv[1:]`` by default) into a ``Recipe``.

    Args:
        argv: the command-line arguments.
        prog: the command's name in ``--help`` (default: the script's).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = recipe_parser(prog)
    if argv and not argv[0].startswith("-"):  # the recipe file's keys become the parser's defaults
        parser.set_defaults(**read_recipe_file(find_recipe(argv[0])))
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        token = unknown[0]
        if not token.startswith("--"):
            raise RecipeError(f"unexpected argument {token!r}: give one recipe file, then --key=value overrides")
        raise RecipeError(f"{token}: {_unknown_key(token[2:].split('=', 1)[0])}")
    values = vars(given)
    values.pop("recipe")
    return Recipe(**values)


def recipe_diff(recipe: Recipe) -> str:
    """The keys whose values differ from the defaults, as YAML lines (what a recipe file of this run lists)."""
    defaults = Recipe().to_dict()
    changed = {key: value for key, value in recipe.to_dict().items() if value != defaults[key]}
    return yaml.safe_dump(changed, sort_keys=False).rstrip() if changed else "(none: the defaults)"


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
