"""The hooks (accel_slowfast/hooks/), on tiny Linear/BatchNorm models through the Runner,
and once end to end with train()."""

import inspect
import json
import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from conftest import tiny_recipe
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from accel_slowfast.checkpointing.resume import load_checkpoint
from accel_slowfast.engine.hooks import (
    CheckpointHook,
    CheckpointWriter,
    EarlyStoppingHook,
    EMAHook,
    EmptyCacheHook,
    OptimizerHook,
    PreciseBNHook,
    ProfilerHook,
    recompute_bn_stats,
)
from accel_slowfast.engine.runner import EVENTS, Runner
from accel_slowfast.engine.training import train
from accel_slowfast.models.builders import build_model, convert_sync_batchnorm
from accel_slowfast.recipe.recipe import Recipe, RecipeError


def _step(model, batch, train_mode):
    loss = F.mse_loss(model(batch["x"]), batch["y"])
    return {"loss": loss, "log_vars": {"loss": loss.detach()}, "num_samples": len(batch["x"])}


def _forward(model, batch):
    return model(batch["x"])


def _batches(n, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(size, 3, generator=g) * 2 + 1, "y": torch.randn(size, 1, generator=g)} for _ in range(n)]


def _bn_model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 1))


def _runner(work_dir, model_type=None, accelerator=None, lr=0.1):
    accelerator = accelerator or Accelerator(cpu=True)
    torch.manual_seed(0)
    model = model_type() if model_type else torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model, optimizer = accelerator.prepare(model, optimizer)
    return Runner(model, optimizer, accelerator, work_dir, _step)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


class Probe:
    """Snapshots of the model's parameters at one event, from a chosen priority."""

    def __init__(self, event, priority):
        self.priority, self.seen = priority, []
        setattr(self, event, lambda runner: self.seen.append(_params(runner.model)))


# --- EMA ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval, warm_up", [(1, 3), (2, 1)])
def test_ema_follows_mmcv_formula_and_evaluation_sees_the_average(tmp_path, interval, warm_up):
    runner = _runner(tmp_path)
    initial = _params(runner.model)
    ema = EMAHook(runner.model, momentum=0.5, interval=interval, warm_up=warm_up)
    stepped = Probe("after_train_iter", 45)  # after OptimizerHook (40), before EMAHook (50)
    evaluated = Probe("after_train_epoch", "LOW")  # where EvalHook runs
    trained_on = Probe("before_train_iter", "LOWEST")
    for hook in (OptimizerHook(), ema, stepped, evaluated, trained_on):
        runner.register_hook(hook)
    runner.run({"train": _batches(3)}, [("train", 1)], max_epochs=2)

    expected, averages = initial, []
    for i, weights in enumerate(stepped.seen):
        if i % interval == 0:
            m = min(0.5**interval, (1 + i) / (warm_up + i))
            expected = [(1 - m) * e + m * w for e, w in zip(expected, weights, strict=True)]
        averages.append(expected)
    for seen, want in zip(evaluated.seen, (averages[2], averages[5]), strict=True):
        for a, b in zip(seen, want, strict=True):
            torch.testing.assert_close(a, b)
    # epoch 2 trains on from the trained weights, not the average
    for a, b in zip(trained_on.seen[3], stepped.seen[2], strict=True):
        assert torch.equal(a, b)
    assert not torch.allclose(averages[5][0], stepped.seen[5][0])
    # after the run the model holds the average (as mmcv's) and the hook the trained weights
    assert ema.swapped
    for p, a in zip(runner.model.parameters(), averages[5], strict=True):
        torch.testing.assert_close(p.detach(), a)
    for s, w in zip(ema.shadow.values(), stepped.seen[5], strict=True):
        assert torch.equal(s, w)


def _resumable(work_dir, batches, crash_after=None):
    accelerator = Accelerator(cpu=True)
    runner = _runner(work_dir, _bn_model, accelerator)
    ema = EMAHook(runner.model, momentum=0.3, warm_up=2)
    writer = CheckpointWriter(recipe={}, max_keep_ckpts=0, objects=[ema])
    for hook in (OptimizerHook(), ema, PreciseBNHook(batches, num_batches=2, forward=_forward),
                 CheckpointHook(writer, interval=1, interval_iters=0)):
        runner.register_hook(hook)
    if crash_after:
        def crash(r):
            if r.epoch + 1 == crash_after:
                raise KeyboardInterrupt("simulated preemption")
        runner.register_hook(SimpleNamespace(after_train_epoch=crash), "LOWEST")  # after the checkpoint
    return runner, accelerator, ema


def test_ema_and_precise_bn_resume_equal_an_uninterrupted_run(tmp_path):
    batches = _batches(3)
    straight, _, straight_ema = _resumable(tmp_path / "straight", batches)
    straight.run({"train": batches}, [("train", 1)], max_epochs=3)

    interrupted, *_ = _resumable(tmp_path / "resumed", batches, crash_after=2)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run({"train": batches}, [("train", 1)], max_epochs=3)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "epoch_2"
    saved = torch.load(checkpoint / "custom_checkpoint_1.pkl", weights_only=True)
    assert saved["swapped"] and saved["shadow"].keys() == dict(_bn_model().named_parameters()).keys()

    runner, accelerator, ema = _resumable(tmp_path / "resumed", batches)
    load_checkpoint(checkpoint, accelerator, [runner, ema])
    assert runner.epoch == 2
    runner.run({"train": batches}, [("train", 1)], max_epochs=3)
    ours, reference = runner.model.state_dict(), straight.model.state_dict()
    for key in reference:
        assert torch.equal(ours[key], reference[key]), key
    assert ema.swapped == straight_ema.swapped
    for key in straight_ema.shadow:
        assert torch.equal(ema.shadow[key], straight_ema.shadow[key]), key


def test_ema_refuses_a_checkpoint_of_another_model():
    ema = EMAHook(torch.nn.Linear(3, 1))
    with pytest.raises(ValueError, match="do not match"):
        ema.load_state_dict({"shadow": {"other.weight": torch.zeros(1)}, "swapped": False})


# --- precise BN -----------------------------------------------------------------------------------------------
class PartlyFrozen(torch.nn.Module):
    """A BatchNorm that trains and one kept in eval mode (as SlowFast's frozen stages)."""

    def __init__(self):
        super().__init__()
        self.linear, self.bn, self.frozen = torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)

    def train(self, mode=True):
        super().train(mode)
        self.frozen.eval()
        return self

    def forward(self, x):
        return self.frozen(self.bn(self.linear(x)))


def test_precise_bn_sets_running_stats_to_the_average_of_n_batches():
    torch.manual_seed(0)
    model = PartlyFrozen().eval()
    model.bn(torch.randn(8, 4) * 5)  # eval mode: no update; make the old statistics non-trivial
    model.bn.running_mean.fill_(3.0)
    model.bn.num_batches_tracked.fill_(7)
    frozen_before = {k: v.clone() for k, v in model.frozen.state_dict().items()}
    batches = _batches(5)
    used = recompute_bn_stats(model, batches[:3], Accelerator(cpu=True), _forward)

    with torch.no_grad():
        features = [model.linear(b["x"]) for b in batches[:3]]  # (4, 4) each
    torch.testing.assert_close(model.bn.running_mean, torch.stack([f.mean(0) for f in features]).mean(0))
    torch.testing.assert_close(model.bn.running_var, torch.stack([f.var(0, unbiased=True) for f in features]).mean(0))
    assert used == 3 and model.bn.momentum == 0.1 and int(model.bn.num_batches_tracked) == 7
    assert not model.training
    for key, value in model.frozen.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key


def test_precise_bn_hook_runs_before_evaluations_only_on_a_prepared_loader(tmp_path):
    accelerator = Accelerator(cpu=True)
    samples = [{"x": b["x"][i], "y": b["y"][i]} for b in _batches(4, seed=1) for i in range(4)]
    loader = accelerator.prepare(DataLoader(samples, batch_size=4))
    runner = _runner(tmp_path, _bn_model, accelerator, lr=0.0)  # fixed weights: the statistics are comparable
    evaluated = []
    runner.register_hook(PreciseBNHook(loader, num_batches=2, interval=2, forward=_forward))
    runner.register_hook(SimpleNamespace(after_train_epoch=lambda r: evaluated.append(r.model[1].running_mean.clone())),
                         "LOW")
    runner.run({"train": loader}, [("train", 1)], max_epochs=3)

    with torch.no_grad():
        first_two = [runner.model[0](b["x"]) for b in list(loader)[:2]]
    precise = torch.stack([f.mean(0) for f in first_two]).mean(0)
    assert not torch.allclose(evaluated[0], precise)  # epoch 1: no evaluation, momentum statistics
    torch.testing.assert_close(evaluated[1], precise)  # epoch 2 (interval) and 3 (the last)
    torch.testing.assert_close(evaluated[2], precise)
    assert not accelerator.gradient_state.in_dataloader  # no half-iterated prepared loader left behind


# --- early stopping -------------------------------------------------------------------------------------------
def _stopping_run(tmp_path, scores, patience, rule="greater", workflow=(("train", 1),), meta=None):
    """Epoch e's evaluation scores scores[e - 1] (None: no evaluation), as EvalHook + LoggerHook would leave it."""
    runner = _runner(tmp_path)
    runner.meta.update(meta or {})
    events = []

    def evaluate(r):
        if scores[r.epoch] is not None:
            r.log_buffer.output.update(top1_acc=scores[r.epoch], top5_acc=1.0)
            r.log_buffer.ready = True

    runner.register_hook(SimpleNamespace(after_train_epoch=evaluate), "LOW")
    runner.register_hook(EarlyStoppingHook("top1_acc", patience, rule))
    runner.register_hook(SimpleNamespace(after_train_epoch=lambda r: r.log_buffer.clear_output()), "VERY_LOW")
    runner.register_hook(lambda r, event: events.append(event))
    loaders = {"train": _batches(1), "val": _batches(1)}
    runner.run(loaders, list(workflow), max_epochs=len(scores))
    return runner, events


def test_early_stopping_stops_at_the_right_epoch(tmp_path):
    # best 0.6 at epoch 2; epochs 3 and 4 do not beat it (equal is no improvement): stop after epoch 4
    runner, events = _stopping_run(tmp_path, [0.5, 0.6, 0.55, 0.6, 0.9, 0.9], patience=2)
    assert runner.epoch == 4 and runner.stop_training
    assert runner.meta["early_stop"] == {"best": 0.6, "best_epoch": 2, "bad_evaluations": 2, "stopped": True,
                                         "stopped_epoch": 4}
    assert events.count("after_train_epoch") == 4 and events[-1] == "after_run"

    # epochs without an evaluation do not count; "less" is better for losses
    runner, _ = _stopping_run(tmp_path, [0.5, None, 0.4, None, 0.45, None, 0.5, None], patience=2, rule="less")
    assert runner.epoch == 7

    # a stop ends the whole workflow (no val epoch after it) and a resumed stopped run ends at once
    runner, events = _stopping_run(tmp_path, [0.5, 0.4, 0.9], patience=1, workflow=(("train", 1), ("val", 1)))
    assert runner.epoch == 2 and events.count("before_val_epoch") == 1
    stopped = {"early_stop": runner.meta["early_stop"]}
    runner, events = _stopping_run(tmp_path, [0.5, 0.4, 0.9], patience=1, meta=stopped)
    assert runner.epoch == 0 and events == ["before_run", "after_run"]


def test_early_stopping_names_a_metric_the_evaluation_lacks(tmp_path):
    runner = _runner(tmp_path)
    runner.log_buffer.output.update(top1_acc=0.5)
    with pytest.raises(KeyError, match="mean_class_accuracy"):
        EarlyStoppingHook("mean_class_accuracy", 1).after_train_epoch(runner)


# --- empty cache, profiler, SyncBatchNorm ---------------------------------------------------------------------
def test_empty_cache_only_on_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    for device, after_iter, expected in (("cpu", True, 0), ("cuda", False, 2), ("cuda", True, 4)):
        calls.clear()
        runner = SimpleNamespace(accelerator=SimpleNamespace(device=torch.device(device)))
        hook = EmptyCacheHook(after_iter=after_iter)
        for event in ("after_train_iter", "after_train_epoch", "after_val_iter", "after_val_epoch"):
            getattr(hook, event)(runner)
        assert len(calls) == expected, (device, after_iter)


def test_profiler_writes_a_chrome_trace_of_its_window(tmp_path):
    runner = _runner(tmp_path)
    hook = ProfilerHook(wait=1, warmup=1, active=2)
    runner.register_hook(OptimizerHook())
    runner.register_hook(hook)
    runner.run({"train": _batches(3)}, [("train", 1)], max_epochs=2)
    assert hook.trace_path == tmp_path / "profiler" / "trace_iter3-4.json"
    events = json.loads(hook.trace_path.read_text())["traceEvents"]
    assert any("aten::" in str(e.get("name", "")) for e in events)

    # a run shorter than the window writes what it recorded
    short = ProfilerHook(wait=0, warmup=1, active=10)
    runner = _runner(tmp_path / "short")
    runner.register_hook(short)
    runner.run({"train": _batches(3)}, [("train", 1)], max_epochs=1)
    assert short.trace_path.name == "trace_iter2-3.json" and short.trace_path.exists()


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


@pytest.mark.slow
def test_train_resume_with_ema_and_precise_bn_equals_an_uninterrupted_run(tiny_root, tmp_path, monkeypatch):
    straight = tiny_recipe(tiny_root, tmp_path / "straight", max_epochs=2, ema=True, ema_momentum=0.5,
                           precise_bn_batches=2)
    train(straight)
    interrupted = replace(straight, work_dir=str(tmp_path / "resumed"))
    save = CheckpointHook.after_train_epoch

    def save_then_crash(self, runner):
        save(self, runner)
        raise KeyboardInterrupt("simulated preemption")

    monkeypatch.setattr(CheckpointHook, "after_train_epoch", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.undo()
    train(replace(interrupted, resume_from="auto"))
    for name in ("model.safetensors",):
        ours, reference = (load_file(str(Path(r.work_dir) / "checkpoints" / "epoch_2" / name))
                           for r in (interrupted, straight))
        assert all(torch.equal(ours[k], reference[k]) for k in reference)
    ours, reference = (torch.load(Path(r.work_dir) / "checkpoints" / "epoch_2" / "custom_checkpoint_1.pkl",
                                  weights_only=True)["shadow"] for r in (interrupted, straight))
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_events_are_the_runners():
    hooks = (EMAHook(torch.nn.Linear(1, 1)), PreciseBNHook([]), EarlyStoppingHook("top1_acc", 1), EmptyCacheHook(),
             ProfilerHook())
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
    runner = _runner(tmp_path, lambda: model)
    for hook in hooks:
        runner.register_hook(hook)
    assert [type(h).__name__ for h in runner.hooks] == [
        "LrScheduleHook", "MomentumScheduleHook", "OptimizerHook", "SamplerSeedHook", "EMAHook", "EmptyCacheHook",
        "PreciseBNHook", "IterTimerHook", "EvalHook", "EarlyStoppingHook", "BlendingHook", "LoggerHook",
        "TrackerHook", "ProfilerHook", "CheckpointHook", "InterruptHook"]
    after_epoch = runner.hook_info().split("after_train_epoch:\n")[1].split("\n", 8)[:8]
    assert [line.split(")")[1].strip() for line in after_epoch] == [
        "EMAHook", "EmptyCacheHook", "PreciseBNHook", "EvalHook", "EarlyStoppingHook", "LoggerHook", "TrackerHook",
        "CheckpointHook"]
    plain = build_hooks(Recipe(), model=model, train_loader=[], val_loader=[], val_set=None,
                        interrupts=Interrupts())
    assert [type(h).__name__ for h in plain] == ["LrScheduleHook", "OptimizerHook", "SamplerSeedHook", "IterTimerHook",
                                                 "EvalHook", "LoggerHook", "CheckpointHook", "InterruptHook"]
