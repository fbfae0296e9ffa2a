"""From a ``Recipe`` to a finished run: each ``build_*`` returns one object, ``train`` wires them.

    from accel_slowfast import Recipe, train
    runner = train(Recipe(max_epochs=2))          # the synthetic default, in a notebook

Lifecycle: validate (the Recipe did) -> accelerator -> work_dir (resume planned) -> seed ->
model (resume checked, load_from loaded) -> data -> optimizer -> prepare -> runner (its step:
schedules, mixing) -> hooks -> resume -> run -> end trackers.
"""

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from accel_slowfast.checkpointing.faults import check_work_dir
from accel_slowfast.checkpointing.load import load_weights
from accel_slowfast.checkpointing.lock import hold_work_dir
from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE, CLASSES_FILE, RECIPE_FILE
from accel_slowfast.checkpointing.resume import ResumePlan, check_model_fits, find_checkpoint, plan_resume, restore
from accel_slowfast.checkpointing.writer import remove_staging
from accel_slowfast.data.builders import build_datasets, build_indexes, build_loader, describe_videos
from accel_slowfast.engine.accelerator import build_accelerator, describe, seed_everything, setup_text_logger
from accel_slowfast.engine.hooks import build_hooks, state_objects
from accel_slowfast.engine.mixing import BatchMixing, Blending
from accel_slowfast.engine.runner import Runner
from accel_slowfast.engine.schedule import build_lr_schedule, build_momentum_schedule, optimizer_momentum, scaled_lr
from accel_slowfast.engine.trackers import init_trackers
from accel_slowfast.interrupts import Interrupts, launcher_warning
from accel_slowfast.models.builders import apply_fast_path, build_model, convert_sync_batchnorm, model_report
from accel_slowfast.models.classifier import VideoClassifier
from accel_slowfast.multigrid import MultigridSchedule
from accel_slowfast.recipe.io import recipe_diff, save_recipe
from accel_slowfast.recipe.optimization import OptimizationArgs
from accel_slowfast.recipe.recipe import Recipe
from accel_slowfast.recipe.run import CheckpointArgs, ModelArgs


def classification_step(model: torch.nn.Module, batch: dict[str, Any], train_mode: bool) -> dict[str, Any]:
    """Forward + cross-entropy: the runner's ``train_step`` (the runner does the backward and step)."""
    logits = model(batch["video"])  # (B, num_classes)
    # the mixing's soft targets (mixed, smoothed) when training with them; the hard labels otherwise
    loss = F.cross_entropy(logits.float(), batch.get("target", batch["label"]))
    log_vars = {"loss": loss.detach(), "bad_clip_ratio": batch["replaced"].float().mean()}
    return {"loss": loss, "log_vars": log_vars, "num_samples": batch["label"].shape[0]}


def describe_repeats(recipe: Recipe, num_processes: int) -> str:
    """The start-up line of a ``num_repeats`` run: what a batch holds, and how the lr rule counts it."""
    each = "one position, {n} augmentations" if recipe.sample_once else "{n} positions and augmentations"
    text = (f"Repeated augmentation: a batch holds {recipe.batch_size // recipe.num_repeats} videos x "
            f"{recipe.num_repeats} clips ({each.format(n=recipe.num_repeats)}, one decode) = batch_size "
            f"{recipe.batch_size} clips per process; an epoch takes {recipe.num_repeats} clips of every video; ")
    if not recipe.base_batch_size:
        return text + "lr is not scaled (base_batch_size 0)"
    return text + (f"base_batch_size counts clips: lr {recipe.lr:g} x {num_processes} processes x {recipe.batch_size} "
                   f"clips x {recipe.gradient_accumulation_steps} accumulation / {recipe.base_batch_size} = "
                   f"{scaled_lr(recipe.optimization_args, num_processes):g}")


def build_optimizer(model: VideoClassifier, optimization: OptimizationArgs,
                    num_processes: int) -> torch.optim.Optimizer:
    """SGD (the seed's) or AdamW; ``lr`` follows the linear scaling rule when ``base_batch_size`` is set."""
    lr = scaled_lr(optimization, num_processes)
    if optimization.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=optimization.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=optimization.momentum,
                           weight_decay=optimization.weight_decay)


def build_runner(recipe: Recipe, model: torch.nn.Module, optimizer: torch.optim.Optimizer, accelerator: Accelerator,
                 logger: logging.Logger, multigrid: MultigridSchedule | None = None,
                 plan: ResumePlan | None = None) -> Runner:
    """The runner of a prepared model and optimizer, with the recipe's step: its LR and momentum
    schedules, MixUp/CutMix/label smoothing when on, gradient clipping, the non-finite loss rule.

    A resumed run keeps the LR its checkpoint's run scaled for its processes (``base_batch_size``),
    as mmcv keeps the optimizer's first LR across resumes: a resume on another process count
    continues the same schedule."""
    momentum = None
    if recipe.momentum_policy != "none":
        momentum = build_momentum_schedule(recipe.schedule_args, optimizer_momentum(optimizer.param_groups[0]))
    mix = None
    if recipe.soft_targets:
        blending = Blending(num_classes=recipe.num_classes, mixup_alpha=recipe.mixup_alpha,
                            cutmix_alpha=recipe.cutmix_alpha, mix_prob=recipe.mix_prob,
                            switch_prob=recipe.mix_switch_prob, label_smoothing=recipe.label_smoothing)
        mix = BatchMixing(blending, recipe.seed, accelerator.unwrap_model(model).normalize, accelerator.process_index)
    processes = plan.meta.get("num_processes", accelerator.num_processes) if plan else accelerator.num_processes
    lr_schedule = build_lr_schedule(recipe.schedule_args, scaled_lr(recipe.optimization_args, processes), multigrid)
    return Runner(model, optimizer, accelerator, recipe.work_dir, classification_step, logger,
                  lr_schedule=lr_schedule, momentum_schedule=momentum, mix=mix, grad_clip=recipe.grad_clip,
                  skip_nonfinite=recipe.skip_nonfinite_loss)


def open_work_dir(recipe: Recipe, accelerator: Accelerator) -> tuple[logging.Logger, ResumePlan | None]:
    """The work_dir (held: ``lock.hold_work_dir``) made ready before any data work: without
    stale partial checkpoints, its text log open, the resume planned (verified and compared),
    ``recipe.yaml`` written."""
    work_dir = Path(recipe.work_dir)
    stale = []
    if accelerator.is_main_process:  # (under the lock, every partial save is an interrupted one)
        stale = remove_staging(work_dir)
    accelerator.wait_for_everyone()
    logger = setup_text_logger(work_dir, accelerator.is_main_process)
    if stale:
        logger.info("Removed %d partial checkpoint(s) an interrupted save left: %s", len(stale),
                    ", ".join(p.name for p in stale))
    plan = None
    if recipe.resume_from:
        found = find_checkpoint(recipe.resume_from, work_dir, accelerator, logger)
        plan = found and plan_resume(found, recipe.to_dict(), accelerator.num_processes, logger)
    if accelerator.is_main_process:
        save_recipe(recipe, work_dir / RECIPE_FILE)
    return logger, plan


def build_run_model(model_args: ModelArgs, checkpoints: CheckpointArgs, plan: ResumePlan | None) -> VideoClassifier:
    """The recipe's model, checked against the checkpoint it resumes, or loaded from ``load_from``."""
    model = build_model(model_args.model, model_args.num_classes, model_args.dropout,
                        frozen_stages=model_args.frozen_stages, mean=model_args.mean, std=model_args.std)
    if plan:
        check_model_fits(plan.path, model)
    if checkpoints.load_from:
        load_weights(model, checkpoints.load_from)
    return model


def train(recipe: Recipe, interrupts: Interrupts | None = None) -> Runner:
    """Train ``recipe`` to the end (or resume it) and return the finished runner.

    Everything that can be wrong with the inputs (``resume_from``, ``load_from``, the work_dir) is
    checked before the data is indexed and probed. A stop signal during the run saves a
    checkpoint and raises ``InterruptedRun`` (``interrupts.py``). ``interrupts``: stop-signal
    handlers the caller has installed (the command line keeps them until the process exits);
    None: the run installs its own, and restores the previous handlers when it ends.
    """
    accelerator = build_accelerator(recipe.runtime_args, recipe.logging_args, recipe.gradient_accumulation_steps)
    # The recipe stays as given: a precision it left open is the launcher's, in the log line and
    # the trackers' configuration, not in recipe.yaml (a later command's launcher decides again).
    run_line = describe(accelerator, recipe.runtime_args)
    work_dir = Path(recipe.work_dir)
    # From here on a stop signal is recorded, acted on after the step; the work_dir is this run's.
    with (contextlib.nullcontext(interrupts) if interrupts else Interrupts() as interrupts,
          hold_work_dir(recipe, accelerator) as run_id):
        logger, plan = open_work_dir(recipe, accelerator)
        run_id = plan and plan.meta.get("run_id") or run_id  # a resumed run keeps its id (and its checkpoints)
        if accelerator.is_main_process and launcher_warning():
            logger.warning(launcher_warning())
        seed_everything(recipe.runtime_args, accelerator)
        model = build_run_model(recipe.model_args, recipe.checkpoint_args, plan)

        data = recipe.data_args
        multigrid = MultigridSchedule(recipe) if recipe.multigrid else None  # the one schedule of the run
        train_index, val_index = build_indexes(data, accelerator)
        if accelerator.is_main_process:  # class names for predict/export
            (work_dir / CLASSES_FILE).write_text(json.dumps(train_index.classes))
        train_set, val_set = build_datasets(data, recipe.augmentation_args, recipe.model_args, train_index, val_index,
                                            accelerator, seed=recipe.seed, bad_video_log=work_dir / BAD_VIDEOS_FILE,
                                            multigrid=multigrid)
        size = model_report(model, recipe.clip_len, recipe.crop_size)
        if accelerator.is_main_process:  # room for a checkpoint: weights + optimizer state (<= 2 per weight)
            check_work_dir(work_dir, checkpoint_bytes=3 * sum(p.numel() * p.element_size() for p in model.parameters()))
        model = convert_sync_batchnorm(model, recipe.sync_bn, accelerator, logger)  # before prepare (DDP)
        optimizer = build_optimizer(model, recipe.optimization_args, accelerator.num_processes)
        batching = dict(batch_size=recipe.batch_size, seed=recipe.seed)
        train_loader = build_loader(train_set, data, accelerator, train=True, multigrid=multigrid, **batching)
        val_loader = build_loader(val_set, data, accelerator, train=False, **batching)
        # multigrid: precise BN reads base-shape batches, the shape evaluation sees
        bn_loader = build_loader(train_set, data, accelerator, train=True, multigrid=multigrid, base_shape=True,
                                 **batching) if multigrid else None
        max_iters = train_loader.batch_sampler.iterations(recipe.max_epochs) if multigrid else 0
        # after the optimizer: compile and channels_last keep the same parameters
        model = apply_fast_path(model, channels_last=recipe.channels_last, compile=recipe.compile)
        model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
        if bn_loader is not None:
            bn_loader = accelerator.prepare(bn_loader)

        logger.info("Recipe, where it differs from the defaults (all keys: recipe.yaml):\n%s", recipe_diff(recipe))
        logger.info(run_line)
        logger.info("Model %s: %.2f M parameters (%.2f M trainable), %.2f GMACs (the published \"GFLOPs\") = %.2f "
                    "GFLOPs per %d x %d² view; %d classes", recipe.model, size["params_m"], size["trainable_params_m"],
                    size["gmacs_per_view"], size["gflops_per_view"], recipe.clip_len, recipe.crop_size,
                    recipe.num_classes)
        logger.info("Data: %s, %d iterations/epoch on each of %d processes; %s",
                    describe_videos(train_set, "training"), len(train_loader), accelerator.num_processes,
                    describe_videos(val_set, "validation"))
        if recipe.num_repeats > 1:
            logger.info(describe_repeats(recipe, accelerator.num_processes))
        if multigrid:
            logger.info("Multigrid: %d iterations in all on each process; by epoch:\n%s", max_iters,
                        multigrid.table())
        logger.info("Outputs: %s (metrics.jsonl, recipe.yaml, checkpoints/)", work_dir.resolve())

        runner = build_runner(recipe, model, optimizer, accelerator, logger, multigrid, plan)
        hooks = build_hooks(recipe, model=model, train_loader=bn_loader or train_loader, val_loader=val_loader,
                            val_set=val_set, interrupts=interrupts, run_id=run_id)
        for hook in hooks:
            runner.register_hook(hook)
        if plan:  # the position and the EMA weights, saved beside Accelerate's state (resume.load_checkpoint)
            restore(plan, runner, state_objects(hooks))
            logger.info("Resumed from %s at epoch %d (iteration %d of it), global iteration %d", plan.path,
                        runner.epoch + 1, runner.start_inner_iter, runner.iter)
        init_trackers(accelerator, recipe.logging_args, recipe.to_dict(), work_dir, resumed=plan is not None)
        runner.run({"train": train_loader, "val": val_loader}, recipe.phases, recipe.max_epochs, max_iters)
        accelerator.end_training()
    return runner

