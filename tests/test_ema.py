"""EMAHook (engine/hooks/ema.py): mmcv's formula, the swap around evaluation, resume with precise BN."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import tiny_runner as tiny
import torch
from accelerate import Accelerator
from conftest import tiny_recipe
from safetensors.torch import load_file
from tiny_runner import Probe

from accel_slowfast.checkpointing.resume import load_checkpoint
from accel_slowfast.engine.hooks import CheckpointHook, CheckpointWriter, EMAHook, PreciseBNHook
from accel_slowfast.engine.training import train


# --- EMA ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval, warm_up", [(1, 3), (2, 1)])
def test_ema_follows_mmcv_formula_and_evaluation_sees_the_average(tmp_path, interval, warm_up):
    runner = tiny.runner(tmp_path, lr=0.1)
    initial = tiny.params(runner.model)
    ema = EMAHook(runner.model, momentum=0.5, interval=interval, warm_up=warm_up)
    stepped = Probe("after_train_iter", 45)  # after the runner's step, before EMAHook (50)
    evaluated = Probe("after_train_epoch", "LOW")  # where EvalHook runs
    trained_on = Probe("before_train_iter", "LOWEST")
    for hook in (ema, stepped, evaluated, trained_on):
        runner.register_hook(hook)
    runner.run({"train": tiny.batches(3)}, [("train", 1)], max_epochs=2)

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
    runner = tiny.runner(work_dir, tiny.bn_model, accelerator, lr=0.1)
    ema = EMAHook(runner.model, momentum=0.3, warm_up=2)
    writer = CheckpointWriter(recipe={}, max_keep_ckpts=0, objects=[ema])
    for hook in (ema, PreciseBNHook(batches, num_batches=2, forward=tiny.forward),
                 CheckpointHook(writer, interval=1, interval_iters=0)):
        runner.register_hook(hook)
    if crash_after:
        def crash(r):
            if r.epoch + 1 == crash_after:
                raise KeyboardInterrupt("simulated preemption")
        runner.register_hook(SimpleNamespace(after_train_epoch=crash), "LOWEST")  # after the checkpoint
    return runner, accelerator, ema


def test_ema_and_precise_bn_resume_equal_an_uninterrupted_run(tmp_path):
    batches = tiny.batches(3)
    straight, _, straight_ema = _resumable(tmp_path / "straight", batches)
    straight.run({"train": batches}, [("train", 1)], max_epochs=3)

    interrupted, *_ = _resumable(tmp_path / "resumed", batches, crash_after=2)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run({"train": batches}, [("train", 1)], max_epochs=3)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "epoch_2"
    saved = torch.load(checkpoint / "custom_checkpoint_1.pkl", weights_only=True)
    assert saved["swapped"] and saved["shadow"].keys() == dict(tiny.bn_model().named_parameters()).keys()

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
