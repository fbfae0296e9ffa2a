"""What every command sets up the same way (train, test, predict, data check): the Accelerator,
the seeds, the text log.

Precision follows Accelerate's own precedence unless the recipe sets it: a recipe's
``mixed_precision`` (``no``, ``fp16``, ``bf16``) wins; left empty, the launcher decides
(``accelerate launch --mixed_precision bf16``, ``accelerate config``, ``ACCELERATE_MIXED_PRECISION``).

    accelerate launch --mixed_precision bf16 train.py      # bf16: the recipe is silent
    accelerate launch train.py --mixed_precision=no        # fp32: the recipe wins
"""

import logging
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed

from accel_slowfast.config import Recipe
from accel_slowfast.trackers import build_trackers
from accel_slowfast.workdir import log_file_name


def build_accelerator(recipe: Recipe | None = None) -> Accelerator:
    """The run's ``Accelerator``: precision (see above), gradient accumulation, trackers, and a
    seeded sampler; ``None`` builds one for inference (precision from Accelerate)."""
    if recipe is None:
        return Accelerator()
    return Accelerator(
        mixed_precision=recipe.mixed_precision or None,  # None: Accelerate's flag/config/environment decides
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        log_with=build_trackers(recipe) or None,  # all = wandb + tensorboard, not every installed tracker
        project_dir=recipe.work_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=recipe.seed),
    )


def describe(accelerator: Accelerator, recipe: Recipe) -> str:
    """One log line: processes, device, the precision in force and where it came from."""
    source = "the recipe" if recipe.mixed_precision else "Accelerate (launcher flag, accelerate config or environment)"
    return (f"Run: {accelerator.num_processes} process(es) on {accelerator.device.type}, mixed precision: "
            f"{accelerator.mixed_precision} (from {source}), gradient accumulation: "
            f"{recipe.gradient_accumulation_steps}, seed: {recipe.seed}")


def seed_everything(recipe: Recipe, accelerator: Accelerator) -> None:
    """Seed python/numpy/torch; with ``deterministic``, deterministic kernels (warn-only on CUDA,
    where 3-D pooling's backward has no deterministic kernel)."""
    set_seed(recipe.seed)
    if recipe.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=accelerator.device.type == "cuda")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def setup_text_logger(work_dir: Path, is_main_process: bool, prefix: str = "train") -> logging.Logger:
    """``accel_slowfast`` logger: console + ``<work_dir>/<prefix>_<time>.log`` on the main process."""
    logger = logging.getLogger("accel_slowfast")
    logger.setLevel(logging.INFO if is_main_process else logging.ERROR)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s - %(levelname)s - %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if is_main_process:
        handlers.append(logging.FileHandler(Path(work_dir) / log_file_name(prefix)))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
