"""The hooks a recipe asks for (engine/hooks/__init__.py build_hooks), their recipe keys, their events,
and once end to end with train()."""

import inspect
import logging
from types import SimpleNamespace

import pytest
import tiny_runner as tiny
import torch
from conftest import tiny_recipe
from safetensors.torch import load_file

from accel_slowfast.engine.events import EVENTS
from accel_slowfast.engine.hooks import (
    EarlyStoppingHook,
    EMAHook,
    EmptyCacheHook,
    EvalHook,
    IterTimerHook,
    LoggerHook,
    PreciseBNHook,
    ProfilerHook,
    SamplerSeedHook,
)
from accel_slowfast.engine.training import train
from accel_slowfast.models.builders import build_model, convert_sync_batchnorm
from accel_slowfast.recipe.recipe import Recipe, RecipeError


def test_sync_batchnorm_conversion_only_with_several_processes(caplog):
    model = build_model("slowfast_tiny", num_classes=5)
    norms = [name for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert norms  # pytorchvideo builds BatchNorm3d
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one = SimpleNamespace(num_processes=1, device=torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger="accel_slowfast"):
        assert convert_sync_batchnorm(model, True, one) is model
    assert "one process" in caplog.text
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    with pytest.raises(ValueError, match="sync_bn: false"):
        convert_sync_batchnorm(model, True, SimpleNamespace(num_processes=2, device=torch.device("cpu")))

    gpus = SimpleNamespace(num_processes=2, device=torch.device("cuda"))
    assert convert_sync_batchnorm(model, False, gpus) is model
    converted = convert_sync_batchnorm(model, True, gpus)
    modules = dict(converted.named_modules())
    assert all(isinstance(modules[name], torch.nn.SyncBatchNorm) for name in norms)
    assert not any(type(m) is torch.nn.BatchNorm3d for m in converted.modules())
    after = converted.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


# --- recipe keys and train() ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, key", [
    (dict(ema=True, ema_momentum=1.0), "ema_momentum"),
    (dict(ema_interval=0), "ema_interval"),
    (dict(ema_warm_up=0), "ema_warm_up"),
    (dict(precise_bn_batches=-1), "precise_bn_batches"),
    (dict(early_stop_metric="top1"), "early_stop_metric"),
    (dict(early_stop_patience=0), "early_stop_patience"),
    (dict(early_stop_rule="max"), "early_stop_rule"),
    (dict(empty_cache="always"), "empty_cache"),
    (dict(profile_iters=[1, 2]), "profile_iters"),
    (dict(profile_iters=[1, 1, 0]), "profile_iters"),
])
def test_recipe_rejects_bad_hook_keys(overrides, key):
    with pytest.raises(RecipeError, match=f"'{key}'"):
        Recipe(**overrides)


def test_train_with_every_extra_hook(tiny_root, tmp_path):
    recipe = tiny_recipe(tiny_root, tmp_path / "run", max_epochs=1, ema=True, ema_momentum=0.5, ema_warm_up=1,
                         precise_bn_batches=2, sync_bn=True, early_stop_metric="top1_acc", empty_cache="iter",
                         profile_iters=[1, 1, 1])
    runner = train(recipe)
    assert runner.epoch == 1
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_1"
    ema = torch.load(checkpoint / "custom_checkpoint_1.pkl", weights_only=True)
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert ema["swapped"] and ema["shadow"].keys() == weights.keys() - {k for k in weights if "running" in k
                                                                          or "num_batches" in k}
    # the checkpoint and the best model hold the average; the hook keeps the trained weights
    best = torch.load(next(checkpoint.parent.glob("best_top1_acc_epoch_1.pth")), weights_only=True)["state_dict"]
    assert torch.equal(best["blocks.6.proj.weight"], weights["blocks.6.proj.weight"])
    assert not torch.equal(ema["shadow"]["blocks.6.proj.weight"], weights["blocks.6.proj.weight"])
    assert (tmp_path / "run" / "profiler" / "trace_iter3-3.json").exists()
    assert runner.meta["early_stop"]["best_epoch"] == 1


def test_events_are_the_runners():
    evaluation = EvalHook([])
    hooks = (EMAHook(torch.nn.Linear(1, 1)), PreciseBNHook([]), evaluation, EmptyCacheHook(), ProfilerHook(),
             EarlyStoppingHook("top1_acc", 1, evaluation=evaluation), SamplerSeedHook(), IterTimerHook(),
             LoggerHook(evaluation=evaluation))
    for hook in hooks:
        methods = [name for name in dir(hook) if not name.startswith("_") and inspect.ismethod(getattr(hook, name))]
        assert set(methods) - {"state_dict", "load_state_dict"} <= set(EVENTS), type(hook).__name__


def test_build_hooks_registers_what_the_recipe_asks_for_in_the_documented_order(tmp_path):
    from accel_slowfast.engine.hooks import build_hooks
    from accel_slowfast.interrupts import Interrupts

    model = torch.nn.Linear(2, 2)
    everything = Recipe(ema=True, precise_bn_batches=2, early_stop_metric="top1_acc", empty_cache="iter",
                        profile_iters=[1], momentum_policy="cosine", optimizer="sgd", report_to="tensorboard",
                        label_smoothing=0.1)
    hooks = build_hooks(everything, model=model, train_loader=[], val_loader=[], val_set=None,
                        interrupts=Interrupts())
    runner = tiny.runner(tmp_path, lambda: model)
    for hook in hooks:
        runner.register_hook(hook)
    assert [type(h).__name__ for h in runner.hooks] == [
        "SamplerSeedHook", "EMAHook", "EmptyCacheHook", "PreciseBNHook", "IterTimerHook", "EvalHook",
        "EarlyStoppingHook", "LoggerHook", "TrackerHook", "ProfilerHook", "CheckpointHook", "InterruptHook"]
    after_epoch = runner.hook_info().split("after_train_epoch:\n")[1].split("\n", 8)[:8]
    assert [line.split(")")[1].strip() for line in after_epoch] == [
        "EMAHook", "EmptyCacheHook", "PreciseBNHook", "EvalHook", "EarlyStoppingHook", "LoggerHook", "TrackerHook",
        "CheckpointHook"]
    plain = build_hooks(Recipe(), model=model, train_loader=[], val_loader=[], val_set=None,
                        interrupts=Interrupts())
    assert [type(h).__name__ for h in plain] == ["SamplerSeedHook", "IterTimerHook", "EvalHook", "LoggerHook",
                                                 "CheckpointHook", "InterruptHook"]
    evaluation = hooks[5]  # the hooks that read the evaluation are given it
    assert hooks[6].evaluation is evaluation and hooks[7].evaluation is evaluation and hooks[8].evaluation is evaluation
