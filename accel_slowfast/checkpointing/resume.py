"""Resuming a run (``resume_from``): which checkpoint, whether this recipe can continue it, restoring it.

All of it happens before any data work, so a wrong resume costs seconds, not a probe of the
whole dataset:

1. ``find_checkpoint``: ``auto`` takes the newest intact checkpoint of ``work_dir`` (damaged or
   incomplete ones are skipped with a warning); an explicit folder must be intact. The main
   process verifies the files (``manifest.verify_checkpoint``) and tells the others.
2. ``plan_resume``: the checkpoint's own ``recipe.yaml`` is compared with this run's. Keys that
   change the state's shape or content (``STATE_KEYS``) cannot differ. Keys that change the
   order of an epoch's batches (``ORDER_KEYS`` and the number of processes) cannot differ when
   the checkpoint stopped mid-epoch, unless ``resume_next_epoch`` lets the run skip the rest of
   that epoch. Every other change is logged.
3. ``restore``: ``load_checkpoint`` into the runner (its position: ``Runner.load_state_dict``) and the hooks.

Nothing in a checkpoint can run code: before loading, every pickled file (``PICKLE_SUFFIXES``) is
read without running it and refused if it names any class or function beyond tensors and plain
values (``load.unsafe_globals``); then everything is loaded with ``weights_only=True``.
Accelerate's ``load_state`` loads the model, optimizer, scaler and random states that way, but
unpickles registered objects with ``weights_only=False``, so the run's own objects (its position,
the EMA weights) are not registered with it: ``writer.CheckpointWriter`` saves them as
``custom_checkpoint_<i>.pkl`` (Accelerate's names: old checkpoints resume unchanged) and
``load_checkpoint`` reads them itself.
"""

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.utils import broadcast_object_list
from safetensors import safe_open
from torch import nn

from accel_slowfast.checkpointing.load import safe_globals, unsafe_globals
from accel_slowfast.checkpointing.manifest import find_resume_checkpoint, read_meta, verify_checkpoint
from accel_slowfast.checkpointing.names import OBJECT_STATE, RECIPE_FILE
from accel_slowfast.errors import CheckpointError

# The checkpoint's state has another shape or content when these change: it cannot load.
STATE_KEYS = ("model", "num_classes", "optimizer", "ema")
# The batches of an epoch come in another order when these (or the number of processes) change.
ORDER_KEYS = ("batch_size", "num_repeats", "gradient_accumulation_steps", "seed", "multigrid_long_cycle",
              "multigrid_short_cycle")
# With the long cycle on, each epoch's shapes (batch, clip_len, crop) follow from these too (multigrid.py).
LONG_CYCLE_ORDER_KEYS = ("max_epochs", "lr_steps")
# What Accelerate and torch.save name their pickles: optimizer.bin, random_states_0.pkl, scaler.pt, ...
PICKLE_SUFFIXES = (".pkl", ".bin", ".pt", ".pth")
# Keys that say how this run starts, not what it trains.
START_KEYS = ("resume_from", "load_from", "resume_next_epoch", "overwrite")


@dataclass
class ResumePlan:
    """A verified checkpoint to resume and how: ``next_epoch`` skips the rest of its epoch."""

    path: Path
    meta: dict[str, Any]
    next_epoch: bool = False


def find_checkpoint(resume_from: str, work_dir: Path, accelerator, logger: logging.Logger) -> Path | None:
    """The verified checkpoint ``resume_from`` names (``auto``: the newest intact one, or None)."""
    found: list[Any] = [None, None]  # (path, error message), decided by the main process
    if accelerator.is_main_process:
        try:
            if resume_from == "auto":
                found[0] = find_resume_checkpoint(work_dir)
                logger.info("resume_from=auto: %s", found[0] or f"no checkpoint in {work_dir}, starting fresh")
            else:
                verify_checkpoint(resume_from)
                found[0] = Path(resume_from)
            if found[0]:
                check_pickles(found[0])
        except CheckpointError as error:
            found[1] = f"resume_from: {error}"
    if accelerator.num_processes > 1:
        broadcast_object_list(found)
    if found[1]:
        raise CheckpointError(found[1])
    return found[0]


def _values(recipe: dict[str, Any], keys) -> str:
    return ", ".join(f"{key}={recipe.get(key)!r}" for key in keys)


def plan_resume(path: Path, recipe: dict[str, Any], num_processes: int, logger: logging.Logger) -> ResumePlan:
    """Compare the checkpoint's recipe with ``recipe``; refuse what cannot continue, log the rest."""
    meta = read_meta(path)
    saved_file = path / RECIPE_FILE
    if not saved_file.is_file():
        logger.warning("resume_from: %s holds no %s (written by an older version); the recipe is not compared "
                       "beyond its optimizer", path, RECIPE_FILE)
        _check_optimizer(path, recipe["optimizer"])
        return _with_epochs_left(ResumePlan(path, meta), recipe["max_epochs"])
    saved = yaml.safe_load(saved_file.read_text())
    changed = [key for key in recipe if key not in START_KEYS and key in saved and saved[key] != recipe[key]]
    state = [key for key in STATE_KEYS if key in changed]
    if state:
        raise CheckpointError(
            f"resume_from: {path} was trained with {_values(saved, state)} but this recipe has "
            f"{_values(recipe, state)}; resume with the checkpoint's values, or start from its weights with "
            f"--load_from={path} instead of --resume_from")
    order_keys = ORDER_KEYS + (LONG_CYCLE_ORDER_KEYS if recipe.get("multigrid_long_cycle") else ())
    order = [key for key in order_keys if key in changed]
    saved_processes = meta.get("num_processes", num_processes)
    old_order, new_order = _values(saved, order), _values(recipe, order)
    if saved_processes != num_processes:
        old_order = ", ".join(filter(None, [old_order, f"processes={saved_processes}"]))
        new_order = ", ".join(filter(None, [new_order, f"processes={num_processes}"]))
    plan = ResumePlan(path, meta)
    if old_order and meta.get("inner_iter", 0):
        where = f"epoch {meta['epoch'] + 1} after {meta['inner_iter']} iterations"
        if not recipe.get("resume_next_epoch"):
            raise CheckpointError(
                f"resume_from: {path} stopped mid-epoch ({where}) with {old_order}; with {new_order} the rest "
                "of that epoch cannot be replayed in the same order, so an exact resume is impossible. Resume "
                f"with the old values, or set --resume_next_epoch=true to continue from epoch {meta['epoch'] + 2}")
        plan.next_epoch = True
        logger.warning("resume_next_epoch: %s -> %s changes the data order; the rest of %s is skipped and "
                       "training continues at epoch %d", old_order, new_order, where, meta["epoch"] + 2)
    if changed:
        logger.info("resume_from: recipe changed since %s: %s", path,
                    ", ".join(f"{key} {saved[key]!r} -> {recipe[key]!r}" for key in changed))
    return _with_epochs_left(plan, recipe["max_epochs"])


def _with_epochs_left(plan: ResumePlan, max_epochs: int) -> ResumePlan:
    """``plan``, if it leaves an epoch to train before ``max_epochs``; else ``CheckpointError``."""
    done = plan.meta["epoch"] + plan.next_epoch  # epochs finished (next_epoch gives up the rest of one)
    if done >= max_epochs:
        raise CheckpointError(
            f"resume_from: {plan.path} has trained {done} epochs and max_epochs is {max_epochs}: nothing is left to "
            f"train; raise --max_epochs to train on, or test it with accel-slowfast test --checkpoint={plan.path}")
    return plan


def _check_optimizer(path: Path, optimizer: str) -> None:
    """For a checkpoint without its recipe: the optimizer that wrote its ``optimizer.bin`` (AdamW's
    param groups have ``betas``, SGD's ``momentum``) must be this recipe's, or its state would not fit."""
    file = path / "optimizer.bin"
    if not file.is_file():
        return
    try:
        with torch.serialization.safe_globals(safe_globals()):
            groups = torch.load(file, map_location="cpu", weights_only=True, mmap=True)["param_groups"]
        saved = "adamw" if "betas" in groups[0] else "sgd" if "momentum" in groups[0] else None
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file: one line
        raise CheckpointError(f"resume_from: {file} does not read ({type(error).__name__})") from None
    if saved and saved != optimizer:
        raise CheckpointError(f"resume_from: {path} was trained with optimizer={saved!r} (its {file.name} holds "
                              f"{saved}'s state) but this recipe has optimizer={optimizer!r}; resume with "
                              f"--optimizer={saved}")


def check_model_fits(path: Path, model: nn.Module) -> None:
    """Compare the checkpoint's weight shapes with ``model``'s (the safetensors header only)."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        return
    own = model.state_dict()
    with safe_open(str(weights), framework="pt") as file:
        saved = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
    wrong = [key for key in own if key not in saved or saved[key] != tuple(own[key].shape)]
    if wrong:
        shown = ", ".join(f"{key} {saved.get(key, 'absent')} vs {tuple(own[key].shape)}" for key in wrong[:3])
        raise CheckpointError(f"resume_from: the weights in {weights} do not fit this model ({len(wrong)} tensors "
                              f"differ, e.g. {shown}); resume with the recipe the checkpoint was trained with")


def check_pickles(folder: Path) -> None:
    """Refuse ``folder`` if a pickled file in it names a class or function beyond tensors and plain values."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in PICKLE_SUFFIXES:
            unsafe = unsafe_globals(path)
            if unsafe:
                raise CheckpointError(
                    f"{path} pickles {', '.join(unsafe[:3])}, which could run code when loaded; a checkpoint holds "
                    "only tensors and plain values, so this file was not written by a training run (or was altered "
                    "after); it is not loaded")


def load_checkpoint(folder: Path, accelerator, objects: list) -> None:
    """Load ``folder`` into the prepared model, optimizer, scaler and random states (Accelerate's
    ``load_state``, ``weights_only=True``) and into ``objects`` (each from its ``custom_checkpoint_<i>.pkl``).

    Accelerate would unpickle those files with ``weights_only=False``, so its ``load_state`` reads
    a view of the folder without them, and they are read here with ``weights_only=True``.
    """
    object_file = re.compile(OBJECT_STATE.replace(".", r"\.").format(r"\d+"))
    with tempfile.TemporaryDirectory(prefix="accel_slowfast_resume_") as view:
        for path in Path(folder).iterdir():
            if not object_file.fullmatch(path.name):
                os.symlink(path.resolve(), Path(view) / path.name)
        accelerator.load_state(view)
    with torch.serialization.safe_globals(safe_globals()):
        for index, obj in enumerate(objects):
            path = Path(folder) / OBJECT_STATE.format(index)
            obj.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def restore(plan: ResumePlan, runner, objects: list) -> None:
    """Load the checkpoint into the runner (its prepared model, optimizer, random states and its
    position) and ``objects`` (the hooks saved after it, in their order)."""
    try:
        load_checkpoint(plan.path, runner.accelerator, [runner, *objects])
    except Exception as error:  # noqa: BLE001 - whatever Accelerate or torch raise: one line
        lines = str(error).strip().splitlines()
        raise CheckpointError(f"resume_from: {plan.path} does not load into this run ({type(error).__name__}: "
                              f"{lines[0] if lines else ''}); resume with the recipe it was trained with") from None
    if plan.next_epoch:
        runner.epoch, runner.start_inner_iter = runner.epoch + 1, 0
        runner.log_buffer.clear()
