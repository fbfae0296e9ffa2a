"""The recipe: every training setting, its default, its meaning and its allowed values, in one dataclass.

The keys saying where the videos come from (dataset, data_root, lists, decoder) are inherited from
``accel_slowfast/recipe_data.py``'s ``DataSource``; the rest are here.

Defaults train ``slowfast_tiny`` on the built-in synthetic dataset (a few minutes on 2 CPU
cores). A YAML recipe lists only what differs; ``--key=value`` overrides win over the YAML
(``accel_slowfast/recipe_io.py`` reads both):

    accel-slowfast train recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4
    accel-slowfast train --help                   # every key by group, with its default

Each key carries its own rule (``accel_slowfast/recipe_fields.py``): a ``Literal`` type lists its
choices, ``min``/``max`` (inclusive) and ``above``/``below`` (exclusive) bound a number. Building a
``Recipe`` checks every key against its rule, then ``validate`` checks the combinations; either
fails with one ``RecipeError`` line naming the key and the fix. This module imports no torch, so
``--help`` and those errors come at once.
"""

import dataclasses
import importlib.util
import shutil
from dataclasses import dataclass
from typing import Any, Literal

from accel_slowfast.errors import RecipeError
from accel_slowfast.models.presets import IMAGENET_MEAN, IMAGENET_STD, NUM_STAGES, PRESETS
from accel_slowfast.multigrid import check_recipe as check_multigrid
from accel_slowfast.recipe.fields import (
    AUGMENT,
    CHECKPOINT,
    DATA,
    GROUPS,
    LOGGING,
    MODEL,
    OPTIM,
    PERF,
    RUN,
    TEST,
    check_value,
)
from accel_slowfast.recipe.fields import recipe_field as _f  # short: the fields below use it a hundred times
from accel_slowfast.recipe.source import DataSource
from accel_slowfast.schedules import ANNEAL_STRATEGIES, LR_POLICIES, MOMENTUM_POLICIES, WARMUPS, check_schedule_keys

# Choices that other modules check too (the Literal of a tuple is the Literal of its items).
AVERAGE_CLIPS = ("prob", "score")  # data/views.py: mean of the views' softmax, or of their logits
MODELS = tuple(sorted(PRESETS))
SEED_MAX = 2**32 - 1  # np.random.seed (which accelerate's set_seed calls) takes 32 bits
# The optimizer steps float32 weights under every mixed_precision (autocast keeps them float32), so a
# learning rate must be a float32 number: 1e300 would overflow at the first step.
FLOAT32_MAX = 3.4028234663852886e38
__all__ = ["AVERAGE_CLIPS", "GROUPS", "MODELS", "Recipe", "RecipeError"]  # GROUPS: --help's sections, in order


@dataclass
class Recipe(DataSource):
    work_dir: str = _f("work_dirs/synthetic_slowfast_tiny", "Folder for logs, metrics.jsonl, checkpoints/.", RUN)
    seed: int = _f(0, "Seed for weights, shuffling and augmentation.", RUN, min=0, max=SEED_MAX,
                   hint="numpy takes seeds of 32 bits")
    deterministic: bool = _f(False, "Use deterministic algorithms (bitwise repeatable on CPU; warn-only on CUDA).", RUN)
    model: Literal[MODELS] = _f("slowfast_tiny", "Model preset (`accel-slowfast models` prints their sizes).", MODEL)
    num_classes: int = _f(5, "Number of classes of the classification head.", MODEL, min=1)
    frozen_stages: int = _f(-1, "Freeze the stem(s) and res stages 1..k (BN in eval mode); "
                                "-1 freezes nothing, 4 trains the classifier only (linear probing).", MODEL,
                            min=-1, max=NUM_STAGES, hint=f"-1 trains everything, {NUM_STAGES} is linear probing")
    dropout: float = _f(0.5, "Dropout before the final linear layer.", MODEL, min=0, below=1)
    clip_len: int = _f(16, "Frames per clip (SlowFast: the fast pathway's; a multiple of its alpha).", DATA, min=1)
    frame_interval: int = _f(2, "Source frames between two sampled frames.", DATA, min=1)
    short_side: int = _f(56, "Validation/test frames are resized to this short side (training crops are "
                             "scale-free).", AUGMENT, min=1)
    crop_size: int = _f(56, "Side of the square crop fed to the model.", AUGMENT, min=1)
    short_side_jitter: list[int] = _f([], "Train with PySlowFast's scale jitter: random short side in [min, max], "
                                          "then a random crop (instead of RandomResizedCrop), e.g. "
                                          "[256, 320].", AUGMENT)
    crop_area_min: float = _f(0.5, "Smallest RandomResizedCrop area, as a fraction of the frame (seed: 0.08).", AUGMENT,
                              above=0, max=1)
    flip_ratio: float = _f(0.5, "Probability of a horizontal flip in training.", AUGMENT, min=0, max=1)
    rand_augment: bool = _f(False, "Train with pytorchvideo's RandAugment on each clip (the same operations on every "
                                   "frame): PySlowFast's rand-m<magnitude>-n<layers>-mstd0.5.", AUGMENT)
    rand_augment_magnitude: int = _f(9, "rand_augment: strength of each operation (PySlowFast's m).", AUGMENT,
                                     min=0, max=10)
    rand_augment_layers: int = _f(2, "rand_augment: operations drawn per clip (PySlowFast's n).", AUGMENT, min=1,
                                  max=14)
    random_erasing: float = _f(0.0, "Probability of erasing a random box (the same in every frame) with noise "
                                    "(PySlowFast's RE_PROB); 0: off.", AUGMENT, min=0, max=1)
    mixup_alpha: float = _f(0.0, "MixUp each training batch with itself reversed, lambda ~ Beta(alpha, alpha); 0: "
                                 "off.", AUGMENT, min=0)
    cutmix_alpha: float = _f(0.0, "CutMix each training batch with itself reversed, box area ~ Beta(alpha, alpha); 0: "
                                  "off.", AUGMENT, min=0)
    mix_prob: float = _f(1.0, "mixup_alpha/cutmix_alpha: probability that a batch is mixed at all.", AUGMENT, min=0,
                         max=1)
    mix_switch_prob: float = _f(0.5, "mixup_alpha and cutmix_alpha: probability that a mixed batch uses CutMix, not "
                                     "MixUp.", AUGMENT, min=0, max=1)
    label_smoothing: float = _f(0.0, "Train on (1 - e) x one-hot + e / num_classes targets; validation and test use "
                                     "the labels.", AUGMENT, min=0, below=1)
    mean: list[float] = _f(list(IMAGENET_MEAN), "RGB mean on the 0-255 scale (the model normalizes with it).", MODEL)
    std: list[float] = _f(list(IMAGENET_STD), "RGB std on the 0-255 scale.", MODEL, above=0)
    num_clips: int = _f(10, "Test: clips per video, spread uniformly (mmaction2's test sampling).", TEST, min=1)
    num_crops: Literal[1, 3] = _f(3, "Test: spatial crops per clip, 1 (centre) or 3 (both ends and centre of the long "
                                     "side).", TEST)
    test_crop_size: int = _f(56, "Test: crop side after the short-side resize (the seed: 256, the full short "
                                 "side).", TEST)
    average_clips: Literal[AVERAGE_CLIPS] = _f("prob", "Test: average the views' softmax ('prob', the seed's) or "
                                                       "logits ('score').", TEST)
    batch_size: int = _f(16, "Clips per device per iteration (with num_repeats: batch_size / num_repeats videos, "
                             "num_repeats clips of each).", OPTIM, min=1)
    num_repeats: int = _f(1, "Training: clips taken from each video per decode, each augmented on its own (repeated "
                             "augmentation: mmaction2's RepeatAugDataset, PySlowFast's AUG.NUM_SAMPLE).", DATA, min=1)
    sample_once: bool = _f(False, "num_repeats: every repeat takes the same frames (one random position, only the "
                                  "augmentations differ) instead of a position of its own.", DATA)
    num_workers: int = _f(2, "Data loading processes per device.", PERF, min=0)
    max_epochs: int = _f(10, "Training epochs.", OPTIM, min=1)
    optimizer: Literal["sgd", "adamw"] = _f("adamw", "Optimizer (the seed uses sgd).", OPTIM)
    lr: float = _f(4.0e-3, "Learning rate (for base_batch_size clips per step when that is set); one-cycle: its "
                           "peak.", OPTIM, min=0, max=FLOAT32_MAX)
    base_batch_size: int = _f(0, "If > 0, scale lr by (processes x batch_size x accumulation) / "
                                 "base_batch_size.", OPTIM, min=0)
    momentum: float = _f(0.9, "sgd: momentum (the start of momentum_policy).", OPTIM, min=0, max=1)
    weight_decay: float = _f(1.0e-4, "Weight decay (applied to every parameter, as the seed does).", OPTIM, min=0)
    grad_clip: float = _f(40.0, "Max L2 norm of the gradients; 0 disables clipping.", OPTIM, min=0)
    lr_policy: Literal[LR_POLICIES] = _f("cosine", "LR policy (mmcv's, see accel_slowfast/schedules.py).", OPTIM)
    by_epoch: bool = _f(True, "Update the regular LR and momentum once per epoch (mmcv's by_epoch) instead of every "
                              "iteration; one-cycle and cyclic momentum are always per iteration.", OPTIM)
    lr_steps: list[int] = _f([], "step: increasing milestones (epochs when by_epoch, else iterations).", OPTIM)
    lr_step_every: int = _f(0, "step: decay every this many epochs (iterations if not by_epoch) instead of "
                               "lr_steps.", OPTIM, min=0)
    lr_gamma: float = _f(0.1, "step: LR factor per decay; exp: LR factor per epoch/iteration; inv: its gamma.", OPTIM,
                         above=0)
    lr_power: float = _f(1.0, "poly, inv: the exponent.", OPTIM, above=0)
    min_lr: float = _f(0.0, "cosine, flat-cosine, cosine-restart, poly: final LR; step: LR floor.", OPTIM, min=0,
                       max=FLOAT32_MAX)
    min_lr_ratio: float = _f(0.0, "cosine, flat-cosine, cosine-restart: if > 0, final LR = lr x min_lr_ratio "
                                  "(instead of min_lr).", OPTIM, min=0)
    flat_cosine_start: float = _f(0.75, "flat-cosine: fraction of training at constant lr before the cosine "
                                        "starts.", OPTIM, min=0, below=1)
    restart_periods: list[int] = _f([], "cosine-restart: length of each cosine cycle (epochs, or iterations if not "
                                        "by_epoch); together at least the whole run.", OPTIM)
    restart_weights: list[float] = _f([], "cosine-restart: peak of each cycle as a fraction of lr (empty: all "
                                          "1.0).", OPTIM)
    one_cycle_pct_start: float = _f(0.3, "one-cycle: part of the cycle rising from lr / div_factor to lr (its "
                                         "peak).", OPTIM, min=0, max=1)
    one_cycle_anneal: Literal[ANNEAL_STRATEGIES] = _f("cos", "one-cycle: annealing shape.", OPTIM)
    one_cycle_div_factor: float = _f(25.0, "one-cycle: the cycle starts at lr / one_cycle_div_factor.", OPTIM, above=0)
    one_cycle_final_div_factor: float = _f(1.0e4, "one-cycle: the cycle ends at its start LR / this.", OPTIM, above=0)
    one_cycle_three_phase: bool = _f(False, "one-cycle: fall back to the start LR, then anneal in a third "
                                            "phase.", OPTIM)
    one_cycle_total_steps: int = _f(0, "one-cycle: iterations of the cycle; 0 = the run's (never fewer).", OPTIM, min=0)
    warmup: Literal[WARMUPS] = _f("linear", "Warmup (one-cycle needs none: it has its own rise).", OPTIM)
    warmup_epochs: int = _f(1, "Warmup length in epochs (applied per iteration); ignored when warmup_iters > 0.", OPTIM,
                            min=0)
    warmup_iters: int = _f(0, "Warmup length in iterations (mmcv's warmup_by_epoch=False); if > 0, replaces "
                              "warmup_epochs.", OPTIM, min=0)
    warmup_ratio: float = _f(0.1, "LR factor at the first warmup iteration.", OPTIM, above=0, max=1)
    momentum_policy: Literal[MOMENTUM_POLICIES] = _f("none", "Momentum schedule (mmcv's): sets sgd's momentum or "
                                                             "adamw's beta1, from its initial value.", OPTIM)
    momentum_steps: list[int] = _f([], "momentum step: increasing milestones (in by_epoch's unit).", OPTIM)
    momentum_step_every: int = _f(0, "momentum step: decay every this many epochs/iterations, instead of steps.", OPTIM,
                                  min=0)
    momentum_gamma: float = _f(0.5, "momentum step: momentum factor per decay.", OPTIM, above=0)
    min_momentum: float = _f(0.0, "momentum step: floor; momentum cosine: final momentum.", OPTIM, min=0)
    min_momentum_ratio: float = _f(0.0, "momentum cosine: if > 0, final momentum = initial x this (instead of "
                                        "min_momentum).", OPTIM, min=0)
    momentum_target_ratio: list[float] = _f([0.85 / 0.95, 1.0], "momentum cyclic: [lowest, end] momentum of each "
                                                                "cycle as fractions of the initial one.", OPTIM)
    momentum_cyclic_times: int = _f(1, "momentum cyclic: cycles over the run.", OPTIM, above=0)
    momentum_step_ratio_up: float = _f(0.4, "momentum cyclic: fraction of each cycle going down to the lowest.", OPTIM,
                                       min=0, below=1)
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.", OPTIM, min=1)
    multigrid_long_cycle: bool = _f(False, "Multigrid long cycle (PySlowFast's): within each lr_steps stage, train at "
                                           "1/4-1 of clip_len and 1/sqrt2-1 of crop_size with the batch and lr scaled "
                                           "up to match; needs lr_policy step (accel_slowfast/multigrid.py).", OPTIM)
    multigrid_short_cycle: bool = _f(False, "Multigrid short cycle (PySlowFast's): iterations cycle through crops of "
                                            "1/2 and 1/sqrt2 x crop_size and the long cycle's own, the batch scaled "
                                            "up to match (4x, 2x, 1x at the base crop).", OPTIM)
    channels_last: bool = _f(False, "Train in torch.channels_last_3d memory format (model and inputs); faster "
                                    "convolutions on GPUs with tensor cores, usually with mixed_precision.", PERF)
    compile: bool = _f(False, "torch.compile the model (in place, so checkpoint keys are unchanged); needs Triton "
                              "on GPU or a C++ compiler on CPU; the first iterations are slow while it compiles.", PERF)
    mixed_precision: Literal["", "no", "fp16", "bf16"] = _f(
        "", "Mixed precision: no, fp16 or bf16. Empty (the default) leaves it to Accelerate: accelerate launch "
            "--mixed_precision, accelerate config, ACCELERATE_MIXED_PRECISION.", PERF)
    log_interval: int = _f(5, "Write a train record every this many iterations.", LOGGING, min=1)
    progress_bar: bool = _f(True, "Progress bars on a terminal or in a notebook (never in a log file: plain lines "
                                  "there); false: plain lines everywhere.", LOGGING)
    eval_interval: int = _f(2, "Evaluate every this many epochs (and after the last one).", TEST, min=1)
    workflow: list[str] = _f(["train:1"], "mmcv's workflow as mode:epochs, e.g. train:2 val:1 (val: validation "
                                          "loss).", RUN)
    checkpoint_interval: int = _f(5, "Save a resumable checkpoint every this many epochs (and after the last "
                                     "one).", CHECKPOINT, min=1)
    skip_nonfinite_loss: bool = _f(False, "Skip the optimizer step on a NaN/inf loss instead of stopping the "
                                          "run.", OPTIM)
    checkpoint_interval_iters: int = _f(0, "Also save one every this many iterations (resume mid-epoch); 0: "
                                           "never.", CHECKPOINT, min=0)
    max_keep_ckpts: int = _f(2, "Keep this many newest epoch checkpoints; 0 keeps all.", CHECKPOINT, min=0)
    resume_from: str = _f("", "Checkpoint folder to resume everything from, or 'auto' for the newest intact one in "
                              "work_dir (damaged ones are skipped with a warning).", CHECKPOINT)
    overwrite: bool = _f(False, "Start afresh in a work_dir that holds another run's checkpoints, moving them aside to "
                                "checkpoints_<time>/ (without it such a run is refused).", CHECKPOINT)
    resume_next_epoch: bool = _f(False, "When a mid-epoch checkpoint cannot continue its epoch exactly (batch_size, "
                                        "gradient_accumulation_steps, seed or the process count changed), skip the "
                                        "rest of that epoch and continue with the next one instead of "
                                        "stopping.", CHECKPOINT)
    load_from: str = _f("", "Weights to start from (non-strict; skipped keys are reported).", CHECKPOINT)
    ema: bool = _f(False, "Keep an exponential moving average of the weights (mmcv's EMAHook): evaluation, the best "
                          "checkpoint, epoch checkpoints and the final model use it.", OPTIM)
    ema_momentum: float = _f(2.0e-4, "ema: weight m of the new weights per update, ema = (1 - m) * ema + m * "
                                     "weights.", OPTIM, above=0, below=1, hint="mmcv's is 2.0e-4")
    ema_interval: int = _f(1, "ema: update every this many iterations (with momentum ema_momentum ** "
                              "ema_interval).", OPTIM, min=1)
    ema_warm_up: int = _f(100, "ema: the momentum at iteration i is at most (1 + i) / (ema_warm_up + i).", OPTIM,
                          min=1)
    precise_bn_batches: int = _f(0, "Before each evaluation, set BatchNorm statistics to their average over this many "
                                    "training batches per process (PySlowFast's precise BN, which uses 200); 0: "
                                    "off.", TEST, min=0, hint="0 turns it off")
    sync_bn: bool = _f(False, "Convert BatchNorm to SyncBatchNorm (statistics over every process's batch); GPU "
                              "processes only, skipped with one process.", PERF)
    early_stop_metric: Literal["", "top1_acc", "top5_acc", "mean_class_accuracy"] = _f(
        "", "Stop when this validation metric has not improved for early_stop_patience evaluations; empty: never.",
        TEST)
    early_stop_patience: int = _f(5, "early_stop_metric: evaluations without improvement before the run stops.", TEST,
                                  min=1)
    early_stop_rule: Literal["greater", "less"] = _f("greater", "early_stop_metric: 'greater' or 'less' is better.",
                                                     TEST)
    empty_cache: Literal["none", "epoch", "iter"] = _f("none", "torch.cuda.empty_cache(): none, epoch (after every "
                                                               "epoch) or iter (also after every iteration); nothing "
                                                               "on CPU.", PERF)
    profile_iters: list[int] = _f([], "torch.profiler over the first iterations: [active] or [wait, warmup, active]; "
                                      "writes a Chrome trace to <work_dir>/profiler/ (main process). Empty: off.", PERF)
    report_to: Literal["none", "wandb", "tensorboard", "all"] = _f("none", "Trackers (all = wandb + tensorboard); see "
                                                                           "accel_slowfast/trackers.py.", LOGGING)
    wandb_project: str = _f("accel_slowfast", "wandb project name.", LOGGING)
    wandb_entity: str = _f("", "wandb entity (user or team); empty: your default entity.", LOGGING)
    run_name: str = _f("", "Tracker run name; empty: the work_dir's folder name.", LOGGING)
    wandb_tags: list[str] = _f([], "wandb run tags, e.g. --wandb_tags ucf101 r50.", LOGGING)
    log_val_clips: int = _f(4, "wandb: validation clips shown with true and predicted labels per evaluation; 0: "
                               "none.", LOGGING, min=0)
    log_checkpoint: bool = _f(True, "wandb: upload the best checkpoint as a model artifact at the end of the "
                                    "run.", LOGGING)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_value(f, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """The checks between keys (each key's own rule is its field's); raise ``RecipeError`` naming them."""
        self._validate_data()
        self._validate_regularisation()
        check_schedule_keys(self)
        self._validate_run()
        check_multigrid(self)

    def _validate_data(self) -> None:
        alpha = PRESETS[self.model].alpha
        if self.clip_len % alpha:
            raise RecipeError(f"recipe key 'clip_len' ({self.clip_len}) must be a multiple of {self.model}'s alpha "
                              f"({alpha}); try clip_len={max(alpha, self.clip_len // alpha * alpha)}")
        if self.short_side_jitter and (len(self.short_side_jitter) != 2 or
                                       not self.crop_size <= self.short_side_jitter[0] <= self.short_side_jitter[1]):
            raise RecipeError(f"recipe key 'short_side_jitter' must be [min, max] with crop_size <= min <= max, "
                              f"got {self.short_side_jitter}")
        for key in ("test_crop_size", "crop_size"):
            if getattr(self, key) > self.short_side:
                raise RecipeError(f"recipe key '{key}' ({getattr(self, key)}) exceeds 'short_side' ({self.short_side})")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise RecipeError("recipe keys 'mean' and 'std' need 3 values (RGB)")
        self._validate_repeats()
        self.validate_source()
        if self.decoder_device == "cuda" and (self.decoder != "torchcodec" or self.num_workers):
            raise RecipeError("decoder_device 'cuda' decodes with torchcodec's NVDEC in the main process (CUDA cannot "
                              "start in forked loader workers): set --decoder=torchcodec --num_workers=0")

    def _validate_repeats(self) -> None:
        if self.sample_once and self.num_repeats == 1:
            raise RecipeError("recipe key 'sample_once' applies only with num_repeats > 1; set --num_repeats=2 or "
                              "drop it")
        if self.num_repeats > 1 and self.batch_size % self.num_repeats:
            raise RecipeError(f"recipe key 'batch_size' ({self.batch_size}) counts clips, {self.num_repeats} per video "
                              f"(num_repeats): make it a multiple, e.g. --batch_size="
                              f"{max(self.batch_size // self.num_repeats, 1) * self.num_repeats}")
        if self.num_repeats > 1 and (self.multigrid_long_cycle or self.multigrid_short_cycle):
            raise RecipeError("recipe key 'num_repeats' does not combine with multigrid (its batch size changes every "
                              "few steps); set --num_repeats=1 or turn multigrid_long_cycle/short_cycle off")

    def _validate_regularisation(self) -> None:
        mixing = self.mixup_alpha > 0 or self.cutmix_alpha > 0
        if mixing and self.batch_size < 2:
            raise RecipeError("mixup_alpha/cutmix_alpha mix each clip with another of its batch: set batch_size >= 2")
        for switch, on, keys in (("rand_augment", self.rand_augment, ("rand_augment_magnitude", "rand_augment_layers")),
                                 ("mixup_alpha or cutmix_alpha", mixing, ("mix_prob",)),
                                 ("mixup_alpha and cutmix_alpha", self.mixup_alpha and self.cutmix_alpha,
                                  ("mix_switch_prob",))):
            changed = [key for key in keys if getattr(self, key) != self.__dataclass_fields__[key].default]
            if changed and not on:
                raise RecipeError(f"recipe key '{changed[0]}' applies only with {switch} on; set that or drop it")

    def _validate_run(self) -> None:
        for phase in self.workflow:
            mode, _, epochs = phase.partition(":")
            if mode not in ("train", "val") or not epochs.isdigit() or int(epochs) < 1:
                raise RecipeError(f"recipe key 'workflow' has {phase!r}; write mode:epochs with mode train or val, "
                                  "e.g. --workflow train:2 val:1")
        if not any(phase.startswith("train:") for phase in self.workflow):
            raise RecipeError("recipe key 'workflow' needs a train phase, e.g. --workflow train:1")
        if not self.work_dir.strip():
            raise RecipeError("recipe key 'work_dir' is empty; name the run's folder, e.g. --work_dir=work_dirs/my_run")
        if self.report_to != "none" and not self.wandb_project:
            raise RecipeError("recipe key 'wandb_project' is empty; name a project (e.g. --wandb_project=slowfast)")
        for tracker in ("wandb", "tensorboard"):
            if self.report_to in (tracker, "all") and importlib.util.find_spec(tracker) is None:
                raise RecipeError(f"report_to '{self.report_to}' needs the {tracker} package: pip install {tracker} "
                                  "(or set --report_to=none)")
        if self.compile and not (importlib.util.find_spec("triton") or shutil.which("g++") or shutil.which("clang++")):
            raise RecipeError("recipe key 'compile' needs Triton (GPU) or a C++ compiler (CPU), found neither; "
                              "install one or set --compile=false")
        if self.resume_from and self.load_from:
            raise RecipeError("set either 'resume_from' (continue a run) or 'load_from' (start from weights), not both")
        if self.resume_from and self.overwrite:
            raise RecipeError("set either 'resume_from' (continue the run in work_dir) or 'overwrite' (start afresh, "
                              "moving its checkpoints aside), not both")
        if len(self.profile_iters) not in (0, 1, 3) or self.profile_iters and (
                min(self.profile_iters) < 0 or self.profile_iters[-1] < 1):
            raise RecipeError(f"recipe key 'profile_iters' must be [active] or [wait, warmup, active], active >= 1 "
                              f"(e.g. --profile_iters 1 1 3); got {self.profile_iters}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
