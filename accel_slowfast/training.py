"""From a ``Recipe`` to a finished run: each ``build_*`` returns one object, ``train`` wires them.

    from accel_slowfast import Recipe, train
    runner = train(Recipe(max_epochs=2))          # the synthetic default, in a notebook

Lifecycle: validate (the Recipe did) -> accelerator + seed -> data -> model -> optimizer ->
prepare -> hooks -> resume/load -> run -> end trackers.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader

from accel_slowfast.checkpoint import load_weights
from accel_slowfast.config import Recipe, RecipeError
from accel_slowfast.data import (
    ClipDataset,
    VideoIndex,
    ensure_synthetic,
    read_class_folders,
    read_hmdb51_split,
    read_list_file,
    read_ucf101_split,
)
from accel_slowfast.data.dataset import init_worker, list_bad_videos
from accel_slowfast.data.index import check_splits, require_videos
from accel_slowfast.data.probe import probe_errors, probe_index
from accel_slowfast.data.transforms import train_transform, val_transform
from accel_slowfast.data.views import view_transforms
from accel_slowfast.errors import DataError, UserError
from accel_slowfast.extra_hooks import build_extra_hooks, convert_sync_batchnorm
from accel_slowfast.faults import CheckpointWriteError, NonFiniteLossError, check_work_dir
from accel_slowfast.hooks import (
    CheckpointHook,
    EvalHook,
    IterTimerHook,
    LoggerHook,
    OptimizerHook,
    RunnerProgress,
    SamplerSeedHook,
    setup_text_logger,
)
from accel_slowfast.interrupts import EXIT_INTERRUPTED, InterruptedRun, InterruptHook, Interrupts
from accel_slowfast.models import PRESETS, SlowFast, build_model, model_report
from accel_slowfast.recipe_io import load_recipe, recipe_diff, save_recipe
from accel_slowfast.resume import check_model_fits, find_checkpoint, plan_resume, restore
from accel_slowfast.runner import Runner
from accel_slowfast.runtime import build_accelerator, describe, seed_everything
from accel_slowfast.schedules import build_lr_hook, build_momentum_hook
from accel_slowfast.trackers import TrackerHook, init_trackers, tracker_names
from accel_slowfast.workdir import BAD_VIDEOS_FILE, CLASSES_FILE, RECIPE_FILE, remove_staging


def classification_step(model: torch.nn.Module, batch: dict[str, Any], train_mode: bool) -> dict[str, Any]:
    """Forward + cross-entropy: the runner's ``train_step`` (backward is ``OptimizerHook``'s)."""
    logits = model(batch["video"])  # (B, num_classes)
    loss = F.cross_entropy(logits.float(), batch["label"])
    log_vars = {"loss": loss.detach(), "bad_clip_ratio": batch["replaced"].float().mean()}
    return {"loss": loss, "log_vars": log_vars, "num_samples": batch["label"].shape[0]}


def _to_channels_last(module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the ``[slow, fast]`` input in ``channels_last_3d`` like the weights."""
    (video,) = args
    return ([x.contiguous(memory_format=torch.channels_last_3d) for x in video],)  # each (B, C, T, H, W)


def apply_fast_path(model: SlowFast, recipe: Recipe) -> SlowFast:
    """``channels_last``: weights and inputs in ``channels_last_3d``; ``compile``: ``torch.compile``
    in place (``nn.Module.compile``), so the module, its state-dict keys and checkpoints are unchanged."""
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last_3d)
        model.register_forward_pre_hook(_to_channels_last)
    if recipe.compile:
        model.compile()
    return model


def build_indexes(recipe: Recipe, accelerator: Accelerator) -> tuple[VideoIndex, VideoIndex]:
    """Train and validation indexes of ``recipe.dataset``, checked before any video is opened.

    The training set is read and checked first: the validation list is read against its classes,
    so a problem with the training set must not be reported as one of the validation list.
    """
    duplicates = {"duplicates": recipe.duplicate_videos}
    if recipe.dataset in ("synthetic", "ucf101", "hmdb51"):
        root, lists, split = Path(recipe.data_root), Path(recipe.annotation_dir), recipe.split
        if recipe.dataset == "synthetic":
            with accelerator.main_process_first():  # the main process generates, the others reuse
                root = Path(recipe.data_root) if recipe.data_root else ensure_synthetic()
            lists, split = Path(recipe.annotation_dir) if recipe.annotation_dir else root / "ucfTrainTestlist", 1
        read = read_hmdb51_split if recipe.dataset == "hmdb51" else read_ucf101_split
        train_index = require_videos(read(root, lists, split, "train", **duplicates))
        val_index = read(root, lists, split, "test", **duplicates)
    elif recipe.dataset == "folder":
        train_index = require_videos(read_class_folders(Path(recipe.data_root) / "train"))
        val_index = read_class_folders(Path(recipe.data_root) / "val")
        if val_index.classes != train_index.classes:
            only = sorted(set(train_index.classes) ^ set(val_index.classes))
            raise DataError(f"{recipe.data_root}/train and /val must hold the same class folders; in one of them "
                            f"only: {', '.join(only[:5])}")
    else:
        train_index = require_videos(read_list_file(recipe.train_list, recipe.data_root, **duplicates))
        val_index = read_list_file(recipe.val_list, recipe.data_root, train_index.classes,
                                   classes_from=recipe.train_list, **duplicates)
    check_splits(train_index, require_videos(val_index))
    return train_index, val_index


def find_bad_videos(index: VideoIndex, accelerator: Accelerator, bad_video_log: Path, *,
                    shared_cache: bool) -> dict[int, str]:
    """Probe every video (cached) and list the unusable ones, missing files included, in ``bad_video_log``.

    One process per node probes: the local main process of each node writes its node's cache while the
    others on the node wait, then read it (a global ``main_process_first`` made every process of the other
    nodes probe at once). With ``shared_cache`` every node reads the same cache, so the main process alone
    probes.
    """
    first = accelerator.main_process_first if shared_cache else accelerator.local_main_process_first
    with first():
        bad = probe_errors(probe_index(index))
    if accelerator.is_main_process:
        reasons = {str(path): f"missing: no such file (listed in {index.source})" for path in index.missing}
        reasons.update((index.paths[i], reason) for i, reason in bad.items())
        if reasons:
            list_bad_videos(bad_video_log, reasons)
    return bad


def describe_videos(dataset: ClipDataset, name: str) -> str:
    """``"20 training videos (3 unusable: 1 missing, 2 unreadable; see bad_videos.txt)"``, for the Data: log line."""
    missing, unreadable = len(dataset.index.missing), len(dataset.known_bad)
    text = f"{len(dataset.index) + missing} {name} videos"
    if missing or unreadable:
        text += f" ({missing + unreadable} unusable: {missing} missing, {unreadable} unreadable; see {BAD_VIDEOS_FILE})"
    return text


def build_datasets(
    recipe: Recipe, train_index: VideoIndex, val_index: VideoIndex, accelerator: Accelerator
) -> tuple[ClipDataset, ClipDataset]:
    for name, index in (("training", train_index), ("validation", val_index)):  # build_indexes: neither is empty
        if len(index.classes) > recipe.num_classes:
            raise RecipeError(f"the {name} set has {len(index.classes)} classes but 'num_classes' is "
                              f"{recipe.num_classes}; set --num_classes={len(index.classes)}")
    bad_video_log = Path(recipe.work_dir) / BAD_VIDEOS_FILE
    clip = dict(clip_len=recipe.clip_len, frame_interval=recipe.frame_interval, alpha=PRESETS[recipe.model].alpha,
                seed=recipe.seed, decoder=recipe.decoder, bad_video_log=bad_video_log)
    train_set = ClipDataset(
        train_index,
        transforms=[train_transform(short_side_jitter=tuple(recipe.short_side_jitter) or None,
                                    crop_size=recipe.crop_size,
                                    crop_area=(recipe.crop_area_min, 1.0), flip_ratio=recipe.flip_ratio)],
        clip_sampling="random",
        known_bad=find_bad_videos(train_index, accelerator, bad_video_log, shared_cache=recipe.index_cache_shared),
        **clip,
    )
    val_set = ClipDataset(
        val_index,
        transforms=[val_transform(short_side=recipe.short_side, crop_size=recipe.crop_size)],
        clip_sampling="centre",
        known_bad=find_bad_videos(val_index, accelerator, bad_video_log, shared_cache=recipe.index_cache_shared),
        **clip,
    )
    return train_set, val_set


def build_test_dataset(recipe: Recipe, index: VideoIndex, accelerator: Accelerator) -> ClipDataset:
    """The multi-view test set: ``num_clips`` x ``num_crops`` views per video, one view per sample."""
    bad_video_log = Path(recipe.work_dir) / BAD_VIDEOS_FILE
    return ClipDataset(
        index,
        clip_len=recipe.clip_len, frame_interval=recipe.frame_interval, alpha=PRESETS[recipe.model].alpha,
        transforms=view_transforms(short_side=recipe.short_side, crop_size=recipe.test_crop_size,
                                   num_crops=recipe.num_crops),
        clip_sampling="uniform", num_clips=recipe.num_clips, seed=recipe.seed, decoder=recipe.decoder,
        known_bad=find_bad_videos(index, accelerator, bad_video_log, shared_cache=recipe.index_cache_shared),
        bad_video_log=bad_video_log,
    )


def build_loader(dataset: ClipDataset, recipe: Recipe, accelerator: Accelerator, train: bool) -> DataLoader:
    # Workers persist across epochs (the dataset's epoch is in shared memory), as mmaction2's do:
    # no start-up and shutdown per epoch. The loader's own generator keeps iterator creation from
    # drawing on torch's global RNG, whose checkpointed state must be the same whether an epoch
    # started here or was resumed mid-way.
    return DataLoader(
        dataset,
        batch_size=recipe.batch_size,
        shuffle=train,
        num_workers=recipe.num_workers,
        collate_fn=dataset.collate,
        worker_init_fn=init_worker,
        pin_memory=accelerator.device.type == "cuda",
        persistent_workers=recipe.num_workers > 0,
        generator=torch.Generator().manual_seed(recipe.seed),
    )


def build_optimizer(model: SlowFast, recipe: Recipe, accelerator: Accelerator) -> torch.optim.Optimizer:
    """SGD (the seed's) or AdamW; ``lr`` follows the linear scaling rule when ``base_batch_size`` is set."""
    lr = recipe.lr
    if recipe.base_batch_size:
        total = accelerator.num_processes * recipe.batch_size * recipe.gradient_accumulation_steps
        lr = recipe.lr * total / recipe.base_batch_size
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def train(recipe: Recipe) -> Runner:
    """Train ``recipe`` to the end (or resume it) and return the finished runner.

    Everything that can be wrong with the inputs (``resume_from``, ``load_from``, the work_dir) is
    checked before the data is indexed and probed. A stop signal during the run saves a
    checkpoint and raises ``InterruptedRun`` (``interrupts.py``).
    """
    accelerator = build_accelerator(recipe)
    run_line = describe(accelerator, recipe)
    # The recipe as it runs: the precision Accelerate chose when the recipe left it open.
    recipe = dataclasses.replace(recipe, mixed_precision=accelerator.mixed_precision)
    work_dir = Path(recipe.work_dir)
    with Interrupts() as interrupts:  # from here on a stop signal is recorded, acted on after the step
        stale = []
        if accelerator.is_main_process:
            check_work_dir(work_dir, checkpoint_bytes=0)  # writable, before any work
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
        seed_everything(recipe, accelerator)
        model = build_model(recipe.model, recipe.num_classes, recipe.dropout, frozen_stages=recipe.frozen_stages,
                            mean=recipe.mean, std=recipe.std)
        if plan:
            check_model_fits(plan.path, model)
        if recipe.load_from:
            load_weights(model, recipe.load_from)

        train_index, val_index = build_indexes(recipe, accelerator)
        if accelerator.is_main_process:  # class names for predict/export
            (work_dir / CLASSES_FILE).write_text(json.dumps(train_index.classes))
        train_set, val_set = build_datasets(recipe, train_index, val_index, accelerator)
        size = model_report(model, recipe.clip_len, recipe.crop_size)
        if accelerator.is_main_process:  # room for a checkpoint: weights + optimizer state (<= 2 per weight)
            check_work_dir(work_dir, checkpoint_bytes=3 * sum(p.numel() * p.element_size() for p in model.parameters()))
        model = convert_sync_batchnorm(model, recipe.sync_bn, accelerator, logger)  # before prepare (DDP)
        optimizer = build_optimizer(model, recipe, accelerator)
        train_loader = build_loader(train_set, recipe, accelerator, train=True)
        val_loader = build_loader(val_set, recipe, accelerator, train=False)
        model = apply_fast_path(model, recipe)  # after the optimizer: compile/channels_last keep the same parameters
        model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

        logger.info("Recipe, where it differs from the defaults (all keys: recipe.yaml):\n%s", recipe_diff(recipe))
        logger.info(run_line)
        logger.info("Model %s: %.2f M parameters (%.2f M trainable), %.2f GFLOPs per %d x %d² view; %d classes",
                    recipe.model, size["params_m"], size["trainable_params_m"], size["gflops_per_view"],
                    recipe.clip_len, recipe.crop_size, recipe.num_classes)
        logger.info("Data: %s, %d iterations/epoch on each of %d processes; %s",
                    describe_videos(train_set, "training"), len(train_loader), accelerator.num_processes,
                    describe_videos(val_set, "validation"))
        logger.info("Outputs: %s (metrics.jsonl, recipe.yaml, checkpoints/)", work_dir.resolve())

        runner = Runner(model, optimizer, accelerator, work_dir, classification_step, logger)
        progress = RunnerProgress()
        accelerator.register_for_checkpointing(progress)
        runner.register_hook(build_lr_hook(recipe))
        if recipe.momentum_policy != "none":
            runner.register_hook(build_momentum_hook(recipe))
        runner.register_hook(OptimizerHook(recipe.grad_clip, skip_nonfinite=recipe.skip_nonfinite_loss))
        runner.register_hook(SamplerSeedHook())
        runner.register_hook(IterTimerHook())
        runner.register_hook(EvalHook(val_loader, interval=recipe.eval_interval))
        runner.register_hook(LoggerHook(recipe.log_interval, use_trackers=recipe.report_to != "none"))
        if tracker_names(recipe):  # after LoggerHook: confusion matrix, clips, best-checkpoint artifact
            runner.register_hook(TrackerHook(val_set, num_clips=recipe.log_val_clips,
                                             log_checkpoint=recipe.log_checkpoint))
        for hook in build_extra_hooks(recipe, model, train_loader):  # EMA, precise BN, early stop, cache, profiler
            runner.register_hook(hook)
            if hasattr(hook, "state_dict"):  # the EMA weights: saved with, and resumed from, every checkpoint
                accelerator.register_for_checkpointing(hook)
        checkpoint = CheckpointHook(progress, recipe.checkpoint_interval, recipe.max_keep_ckpts,
                                    interval_iters=recipe.checkpoint_interval_iters, recipe=recipe.to_dict())
        runner.register_hook(checkpoint)
        runner.register_hook(InterruptHook(interrupts, checkpoint))  # a stop signal: checkpoint, then stop

        if plan:
            restore(plan, accelerator, progress, runner)
            logger.info("Resumed from %s at epoch %d (iteration %d of it), global iteration %d", plan.path,
                        runner.epoch + 1, runner.start_inner_iter, runner.iter)
        init_trackers(accelerator, recipe, resumed=plan is not None)
        workflow = [(mode, int(epochs)) for mode, _, epochs in (phase.partition(":") for phase in recipe.workflow)]
        runner.run({"train": train_loader, "val": val_loader}, workflow, recipe.max_epochs)
        accelerator.end_training()
    return runner


def main(argv: list[str] | None = None) -> None:
    """``train.py`` entry point. Exit status: 2 for bad input (one line, before any work where it
    can be found then), 1 when the run fails (a non-finite loss, a checkpoint that cannot be
    written), 130 after a SIGINT/SIGTERM checkpoint, 75 after a SIGUSR1 one (requeue me)."""
    import sys

    try:
        recipe = load_recipe(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        train(recipe)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (NonFiniteLossError, CheckpointWriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except InterruptedRun as stop:
        print(f"stopped: {stop}; resume with --resume_from=auto", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except KeyboardInterrupt as error:
        print(f"stopped: {error or 'interrupted'} (no checkpoint of this moment); resume with --resume_from=auto "
              "to continue from the last one", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None


if __name__ == "__main__":  # accelerate launch -m accel_slowfast.training
    main()
