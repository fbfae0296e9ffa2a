"""The evaluation's hooks (evaluation/hooks.py): precise BN and early stopping on the evaluation's results."""

from types import SimpleNamespace

import pytest
import tiny_runner as tiny
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from accel_slowfast.evaluation.hooks import EarlyStoppingHook, Evaluation, PreciseBNHook, recompute_bn_stats


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
    batches = tiny.batches(5)
    used = recompute_bn_stats(model, batches[:3], Accelerator(cpu=True), tiny.forward)

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
    samples = [{"x": b["x"][i], "y": b["y"][i]} for b in tiny.batches(4, seed=1) for i in range(4)]
    loader = accelerator.prepare(DataLoader(samples, batch_size=4))
    runner = tiny.runner(tmp_path, tiny.bn_model, accelerator, lr=0.0)  # fixed weights: the statistics are comparable
    evaluated = []
    runner.register_hook(PreciseBNHook(loader, num_batches=2, interval=2, forward=tiny.forward))
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
    """Epoch e's evaluation scores scores[e - 1] (None: no evaluation), as EvalHook would leave it."""
    runner = tiny.runner(tmp_path)
    runner.meta.update(meta or {})
    events = []
    evaluation = SimpleNamespace(last=None)

    def evaluate(r):
        if scores[r.epoch] is not None:
            evaluation.last = Evaluation(r.epoch + 1, {"top1_acc": scores[r.epoch], "top5_acc": 1.0}, None, None)

    runner.register_hook(SimpleNamespace(after_train_epoch=evaluate), "LOW")
    runner.register_hook(EarlyStoppingHook("top1_acc", patience, rule, evaluation=evaluation))
    runner.register_hook(lambda r, event: events.append(event))
    loaders = {"train": tiny.batches(1), "val": tiny.batches(1)}
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
    runner = tiny.runner(tmp_path)
    evaluation = SimpleNamespace(last=Evaluation(1, {"top1_acc": 0.5}, None, None))
    with pytest.raises(KeyError, match="mean_class_accuracy"):
        EarlyStoppingHook("mean_class_accuracy", 1, evaluation=evaluation).after_train_epoch(runner)
