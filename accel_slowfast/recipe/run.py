"""The recipe's run keys: the model (``ModelArgs``), evaluation and test (``EvaluationArgs``),
checkpoints and resume (``CheckpointArgs``), logs and trackers (``LoggingArgs``), and the process
itself: its folder, seed, precision and speed switches (``RuntimeArgs``). ``Recipe`` inherits them.
"""

import importlib.util
import shutil
from dataclasses import dataclass
from typing import Literal

from accel_slowfast.errors import RecipeError
from accel_slowfast.models.presets import IMAGENET_MEAN, IMAGENET_STD, NUM_STAGES, PRESETS
from accel_slowfast.recipe.fields import Section
from accel_slowfast.recipe.fields import recipe_field as _f  # short: the fields below use it on every line

AVERAGE_CLIPS = ("prob", "score")  # data/views.py: mean of the views' softmax, or of their logits
MODELS = tuple(sorted(PRESETS))
SEED_MAX = 2**32 - 1  # np.random.seed (which accelerate's set_seed calls) takes 32 bits
TRACKERS = {"none": (), "wandb": ("wandb",), "tensorboard": ("tensorboard",), "all": ("wandb", "tensorboard")}


@dataclass
class ModelArgs(Section):
    GROUP = "model"

    model: Literal[MODELS] = _f("slowfast_tiny", "Model preset (`accel-slowfast models` prints their sizes).")
    num_classes: int = _f(5, "Number of classes of the classification head.", min=1)
    frozen_stages: int = _f(-1, "Freeze the stem(s) and res stages 1..k (BN in eval mode); "
                                "-1 freezes nothing, 4 trains the classifier only (linear probing).",
                            min=-1, max=NUM_STAGES, hint=f"-1 trains everything, {NUM_STAGES} is linear probing")
    dropout: float = _f(0.5, "Dropout before the final linear layer.", min=0, below=1)
    mean: list[float] = _f(list(IMAGENET_MEAN), "RGB mean on the 0-255 scale (the model normalizes with it).")
    std: list[float] = _f(list(IMAGENET_STD), "RGB std on the 0-255 scale.", above=0)

    def validate(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise RecipeError("recipe keys 'mean' and 'std' need 3 values (RGB)")


@dataclass
class EvaluationArgs(Section):
    GROUP = "evaluation and test"

    eval_interval: int = _f(2, "Evaluate every this many epochs (and after the last one).", min=1)
    precise_bn_batches: int = _f(0, "Before each evaluation, set BatchNorm statistics to their average over this many "
                                    "training batches per process (PySlowFast's precise BN, which uses 200); 0: "
                                    "off.", min=0, hint="0 turns it off")
    early_stop_metric: Literal["", "top1_acc", "top5_acc", "mean_class_accuracy"] = _f(
        "", "Stop when this validation metric has not improved for early_stop_patience evaluations; empty: never.")
    early_stop_patience: int = _f(5, "early_stop_metric: evaluations without improvement before the run stops.",
                                  min=1)
    early_stop_rule: Literal["greater", "less"] = _f("greater", "early_stop_metric: 'greater' or 'less' is better.")
    num_clips: int = _f(10, "Test: clips per video, spread uniformly (mmaction2's test sampling).", min=1)
    num_crops: Literal[1, 3] = _f(3, "Test: spatial crops per clip, 1 (centre) or 3 (both ends and centre of the long "
                                     "side).")
    test_crop_size: int = _f(56, "Test: crop side after the short-side resize (the seed: 256, the full short "
                                 "side).")
    average_clips: Literal[AVERAGE_CLIPS] = _f("prob", "Test: average the views' softmax ('prob', the seed's) or "
                                                       "logits ('score').")


@dataclass
class CheckpointArgs(Section):
    GROUP = "checkpoints and resume"

    checkpoint_interval: int = _f(5, "Save a resumable checkpoint every this many epochs (and after the last "
                                     "one).", min=1)
    checkpoint_interval_iters: int = _f(0, "Also save one every this many iterations (resume mid-epoch); 0: "
                                           "never.", min=0)
    max_keep_ckpts: int = _f(2, "Keep this many newest epoch checkpoints; 0 keeps all.", min=0)
    resume_from: str = _f("", "Checkpoint folder to resume everything from, or 'auto' for the newest intact one in "
                              "work_dir (damaged ones are skipped with a warning).")
    overwrite: bool = _f(False, "Start afresh in a work_dir that holds another run's checkpoints, moving them aside to "
                                "checkpoints_<time>/ (without it such a run is refused).")
    resume_next_epoch: bool = _f(False, "When a mid-epoch checkpoint cannot continue its epoch exactly (batch_size, "
                                        "gradient_accumulation_steps, seed or the process count changed), skip the "
                                        "rest of that epoch and continue with the next one instead of "
                                        "stopping.")
    load_from: str = _f("", "Weights to start from (non-strict; skipped keys are reported).")

    def validate(self) -> None:
        if self.resume_from and self.load_from:
            raise RecipeError("set either 'resume_from' (continue a run) or 'load_from' (start from weights), not both")
        if self.resume_from and self.overwrite:
            raise RecipeError("set either 'resume_from' (continue the run in work_dir) or 'overwrite' (start afresh, "
                              "moving its checkpoints aside), not both")


@dataclass
class LoggingArgs(Section):
    GROUP = "logging"

    log_interval: int = _f(5, "Write a train record every this many iterations.", min=1)
    progress_bar: bool = _f(True, "Progress bars on a terminal or in a notebook (never in a log file: plain lines "
                                  "there); false: plain lines everywhere.")
    report_to: Literal["none", "wandb", "tensorboard", "all"] = _f("none", "Trackers (all = wandb + tensorboard); see "
                                                                           "accel_slowfast/trackers.py.")
    wandb_project: str = _f("accel_slowfast", "wandb project name.")
    wandb_entity: str = _f("", "wandb entity (user or team); empty: your default entity.")
    run_name: str = _f("", "Tracker run name; empty: the work_dir's folder name.")
    wandb_tags: list[str] = _f([], "wandb run tags, e.g. --wandb_tags ucf101 r50.")
    log_val_clips: int = _f(4, "wandb: validation clips shown with true and predicted labels per evaluation; 0: "
                               "none.", min=0)
    log_checkpoint: bool = _f(True, "wandb: upload the best checkpoint as a model artifact at the end of the "
                                    "run.")

    @property
    def trackers(self) -> list[str]:
        """The Accelerate tracker names ``report_to`` stands for (``all``: wandb and tensorboard)."""
        return list(TRACKERS[self.report_to])

    def validate(self) -> None:
        if self.report_to != "none" and not self.wandb_project:
            raise RecipeError("recipe key 'wandb_project' is empty; name a project (e.g. --wandb_project=slowfast)")
        for tracker in self.trackers:
            if importlib.util.find_spec(tracker) is None:
                raise RecipeError(f"report_to '{self.report_to}' needs the {tracker} package: pip install {tracker} "
                                  "(or set --report_to=none)")


@dataclass
class RuntimeArgs(Section):
    GROUP = "runtime"

    work_dir: str = _f("work_dirs/synthetic_slowfast_tiny", "Folder for logs, metrics.jsonl, checkpoints/.")
    seed: int = _f(0, "Seed for weights, shuffling and augmentation.", min=0, max=SEED_MAX,
                   hint="numpy takes seeds of 32 bits")
    deterministic: bool = _f(False, "Use deterministic algorithms (bitwise repeatable on CPU; warn-only on CUDA).")
    mixed_precision: Literal["", "no", "fp16", "bf16"] = _f(
        "", "Mixed precision: no, fp16 or bf16. Empty (the default) leaves it to Accelerate: accelerate launch "
            "--mixed_precision, accelerate config, ACCELERATE_MIXED_PRECISION.")
    channels_last: bool = _f(False, "Train in torch.channels_last_3d memory format (model and inputs); faster "
                                    "convolutions on GPUs with tensor cores, usually with mixed_precision.")
    compile: bool = _f(False, "torch.compile the model (in place, so checkpoint keys are unchanged); needs Triton "
                              "on GPU or a C++ compiler on CPU; the first iterations are slow while it compiles.")
    sync_bn: bool = _f(False, "Convert BatchNorm to SyncBatchNorm (statistics over every process's batch); GPU "
                              "processes only, skipped with one process.")
    empty_cache: Literal["none", "epoch", "iter"] = _f("none", "torch.cuda.empty_cache(): none, epoch (after every "
                                                               "epoch) or iter (also after every iteration); nothing "
                                                               "on CPU.")
    profile_iters: list[int] = _f([], "torch.profiler over the first iterations: [active] or [wait, warmup, active]; "
                                      "writes a Chrome trace to <work_dir>/profiler/ (main process). Empty: off.")

    def validate(self) -> None:
        if not self.work_dir.strip():
            raise RecipeError("recipe key 'work_dir' is empty; name the run's folder, e.g. --work_dir=work_dirs/my_run")
        if self.compile and not (importlib.util.find_spec("triton") or shutil.which("g++") or shutil.which("clang++")):
            raise RecipeError("recipe key 'compile' needs Triton (GPU) or a C++ compiler (CPU), found neither; "
                              "install one or set --compile=false")
        if len(self.profile_iters) not in (0, 1, 3) or self.profile_iters and (
                min(self.profile_iters) < 0 or self.profile_iters[-1] < 1):
            raise RecipeError(f"recipe key 'profile_iters' must be [active] or [wait, warmup, active], active >= 1 "
                              f"(e.g. --profile_iters 1 1 3); got {self.profile_iters}")
