from types import SimpleNamespace
from unittest.mock import Mock

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator

from accel_slowfast.engine.events import EVENTS, get_priority
from accel_slowfast.engine.runner import Runner


def _step(model, batch, train_mode):
    loss = F.mse_loss(model(batch["x"]), batch["y"])
    return {"loss": loss, "log_vars": {"loss": loss.detach()}, "num_samples": len(batch["x"])}


def _runner(tmp_path, accelerator=None, lr=0.1, **step):
    accelerator = accelerator or Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    model, optimizer = accelerator.prepare(model, optimizer)
    return Runner(model, optimizer, accelerator, tmp_path, _step, **step)


def _batches(n, size=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(size, 3, generator=g), "y": torch.randn(size, 1, generator=g)} for _ in range(n)]


class Recorder:
    """A hook object with every event method, appending (name, event) to a shared list."""

    def __init__(self, name, calls, priority="NORMAL"):
        self.name, self.calls, self.priority = name, calls, priority
        for event in EVENTS:
            setattr(self, event, lambda runner, e=event: calls.append((name, e)))


def test_events_follow_mmcv_order_with_val_workflow(tmp_path):
    calls = []
    runner = _runner(tmp_path)
    runner.register_hook(Recorder("r", calls))
    runner.run({"train": _batches(2), "val": _batches(1)}, [("train", 1), ("val", 1)], max_epochs=2)
    epoch = ["before_train_epoch"] + ["before_train_iter", "after_train_iter"] * 2 + ["after_train_epoch"]
    val = ["before_val_epoch", "before_val_iter", "after_val_iter", "after_val_epoch"]
    assert [e for _, e in calls] == ["before_run"] + (epoch + val) * 2 + ["after_run"]
    assert runner.epoch == 2 and runner.iter == 4


def test_priorities_then_registration_order(tmp_path):
    calls = []
    runner = _runner(tmp_path)
    for name, priority in [("low", "LOW"), ("normal_a", "NORMAL"), ("highest", 0), ("normal_b", 50), ("mid", 45)]:
        runner.register_hook(Recorder(name, calls), priority=priority)
    runner.call_hook("before_run")
    assert [n for n, _ in calls] == ["highest", "mid", "normal_a", "normal_b", "low"]
    assert get_priority("VERY_HIGH") == 10 and get_priority("lowest") == 100
    with pytest.raises(ValueError):
        get_priority("URGENT")


def test_hooks_may_be_plain_callables_or_partial_objects(tmp_path):
    runner = _runner(tmp_path)
    events = []
    partial = SimpleNamespace(after_train_epoch=Mock())  # (a Mock hook would have Mock's own public methods)
    runner.register_hook(lambda r, event: events.append(event))
    runner.register_hook(partial)
    runner.run({"train": _batches(3)}, [("train", 1)], max_epochs=1)
    assert events[0] == "before_run" and events[-1] == "after_run" and events.count("after_train_iter") == 3
    partial.after_train_epoch.assert_called_once_with(runner)


def test_runner_state_seen_by_hooks(tmp_path):
    seen = []
    runner = _runner(tmp_path)

    class Peek:
        def after_train_iter(self, r):
            seen.append((r.epoch, r.iter, r.inner_iter, r.mode, r.max_iters, float(r.outputs["loss"].detach()) > 0))

    runner.register_hook(Peek())
    runner.run({"train": _batches(2)}, [("train", 1)], max_epochs=2)
    assert seen == [(0, 0, 0, "train", 4, True), (0, 1, 1, "train", 4, True),
                    (1, 2, 0, "train", 4, True), (1, 3, 1, "train", 4, True)]
    assert runner.log_buffer.history["loss"]


def test_gradient_accumulation_makes_one_step_from_n_micro_batches(tmp_path):
    accumulated = _runner(tmp_path, Accelerator(cpu=True, gradient_accumulation_steps=3))
    steps = Mock(wraps=accumulated.optimizer.optimizer.step)
    accumulated.optimizer.optimizer.step = steps
    micro = _batches(3)
    accumulated.run({"train": micro}, [("train", 1)], max_epochs=1)
    assert steps.call_count == 1

    # the same step taken at once on the 3 micro-batches together
    torch.manual_seed(0)
    reference = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    whole = {k: torch.cat([b[k] for b in micro]) for k in ("x", "y")}
    _step(reference, whole, True)["loss"].backward()
    optimizer.step()
    for ours, theirs in zip(accumulated.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_gradient_clipping_logs_the_norm_and_bounds_the_update(tmp_path):
    runner = _runner(tmp_path, lr=1.0, grad_clip=1e-3)
    before = [p.detach().clone() for p in runner.model.parameters()]
    batch = [{"x": torch.full((2, 3), 100.0), "y": torch.zeros(2, 1)}]
    runner.run({"train": batch}, [("train", 1)], max_epochs=1)
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(runner.model.parameters(), before, strict=True)])
    assert update.norm() == pytest.approx(1e-3, rel=1e-4)
    assert float(runner.log_buffer.history["grad_norm"][0][0]) > 1


def test_workflow_needs_its_loaders(tmp_path):
    with pytest.raises(ValueError, match="'val' data loader"):
        _runner(tmp_path).run({"train": []}, [("train", 1), ("val", 1)], max_epochs=1)


def test_a_public_method_that_is_no_event_is_refused(tmp_path):
    class Misspelled:
        def after_train_iteration(self, runner):  # never called: the event is after_train_iter
            pass

    with pytest.raises(ValueError, match=r"after_train_iteration.*did you mean 'after_train_iter'\?"):
        _runner(tmp_path).register_hook(Misspelled())


def test_the_hook_table_lists_each_event_s_hooks_in_order(tmp_path):
    runner = _runner(tmp_path)

    class Early:
        def before_run(self, r):
            pass

    class Late:
        def before_run(self, r):
            pass

        def after_train_iter(self, r):
            pass

    runner.register_hook(Late(), "LOWEST")
    runner.register_hook(Early(), "HIGH")
    assert runner.hook_info().splitlines() == ["before_run:", "  (HIGH        ) Early", "  (LOWEST      ) Late",
                                               "after_train_iter:", "  (LOWEST      ) Late"]


def test_a_before_train_iter_hook_may_replace_the_batch_the_step_gets(tmp_path):
    runner = _runner(tmp_path)
    received = []
    runner.train_step = lambda model, batch, train_mode: received.append(batch) or _step(model, batch, train_mode)

    class Replace:
        def before_train_iter(self, r):
            r.data_batch = {**r.data_batch, "y": torch.zeros(2, 1), "seen_at": r.iter}

    runner.register_hook(Replace())
    runner.run({"train": _batches(2)}, [("train", 1)], max_epochs=1)
    assert [batch["seen_at"] for batch in received] == [0, 1]
    assert all(torch.equal(batch["y"], torch.zeros(2, 1)) for batch in received)
    assert runner.data_batch is None  # not held once the iteration is over


def test_the_iteration_s_lr_and_momentum_are_set_before_any_hook_and_the_step(tmp_path):
    seen = []

    class Schedule:
        def __init__(self, values):
            self.values = values

        def check_run(self, max_epochs, max_iters):
            pass

        def __call__(self, at):
            return self.values[at.iteration]

    runner = _runner(tmp_path, lr_schedule=Schedule([0.5, 0.25]), momentum_schedule=Schedule([0.8, 0.9]))
    runner.register_hook(SimpleNamespace(before_train_iter=lambda r: seen.append(
        (r.optimizer.param_groups[0]["lr"], r.optimizer.param_groups[0]["momentum"]))), "HIGHEST")
    runner.run({"train": _batches(2)}, [("train", 1)], max_epochs=1)
    assert seen == [(0.5, 0.8), (0.25, 0.9)]
