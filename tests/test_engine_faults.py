"""A non-finite loss (engine/faults.py): the run stops naming the iteration and keeps the last
checkpoint, or skip_nonfinite_loss skips the step and finishes."""

import pytest
import torch
from conftest import tiny_recipe

import accel_slowfast.engine.training as training
from accel_slowfast.engine.faults import NonFiniteLossError
from accel_slowfast.engine.training import train


def _nan_at(iteration, monkeypatch):
    calls = {"n": 0}
    step = training.classification_step

    def poisoned(model, batch, train_mode):
        outputs = step(model, batch, train_mode)
        calls["n"] += 1
        if calls["n"] == iteration:
            outputs["loss"] = outputs["loss"] * float("nan")
        return outputs

    monkeypatch.setattr(training, "classification_step", poisoned)


def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_checkpoint(tiny_root, tmp_path, monkeypatch):
    _nan_at(8, monkeypatch)  # iteration 8 = epoch 2, iteration 3 of it
    with pytest.raises(NonFiniteLossError, match=r"iteration 8 \(epoch 2, iteration 3 of it\).*epoch_1"):
        train(tiny_recipe(tiny_root, tmp_path / "run", max_epochs=3))
    assert (tmp_path / "run" / "checkpoints" / "epoch_1" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "checkpoints" / "epoch_2").exists()


def test_skip_nonfinite_loss_skips_the_step_and_finishes(tiny_root, tmp_path, monkeypatch):
    _nan_at(3, monkeypatch)
    runner = train(tiny_recipe(tiny_root, tmp_path / "run", skip_nonfinite_loss=True))
    assert runner.epoch == 2 and runner.meta["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
