import math

import pytest
import torch

from accel_slowfast.hooks import LrScheduleHook
from accel_slowfast.schedules import annealing_cos, regular_lr, warmup_factor


class FakeRunner:
    def __init__(self, max_epochs, iters_per_epoch, base_lr):
        self.max_epochs, self.max_iters = max_epochs, max_epochs * iters_per_epoch
        self.data_loader = range(iters_per_epoch)
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
        self.epoch = self.iter = 0

    def lr_at(self, hook, cur_iter):
        self.iter, self.epoch = cur_iter, cur_iter // len(self.data_loader)
        hook.before_train_iter(self)
        return self.optimizer.param_groups[0]["lr"]


# REFERENCE.md §3: base 0.1, 256 epochs, 34 linear warmup epochs, ratio 0.1, 100 iterations/epoch.
SEED_TABLE = [(0, 1.0e-2), (1, 1.002647e-2), (100, 1.264658e-2), (3399, 9.593029e-2), (3400, 9.571049e-2),
              (12800, 5.0e-2), (25500, 3.764908e-6)]


@pytest.mark.parametrize("cur_iter, expected", SEED_TABLE)
def test_seed_recipe_lr_matches_mmcv_table(cur_iter, expected):
    runner = FakeRunner(256, 100, 0.1)
    hook = LrScheduleHook("cosine", warmup="linear", warmup_epochs=34, warmup_ratio=0.1)
    hook.before_run(runner)
    assert runner.lr_at(hook, cur_iter) == pytest.approx(expected, rel=1e-6)


def test_lr_constant_within_an_epoch_when_by_epoch_and_after_warmup():
    runner = FakeRunner(10, 5, 0.1)
    hook = LrScheduleHook("cosine")
    hook.before_run(runner)
    values = [runner.lr_at(hook, i) for i in range(10, 15)]
    assert values == [pytest.approx(annealing_cos(0.1, 0.0, 2 / 10))] * 5


def test_cosine_by_iteration_uses_global_iteration():
    runner = FakeRunner(4, 10, 0.2)
    hook = LrScheduleHook("cosine", by_epoch=False, min_lr=0.01)
    hook.before_run(runner)
    assert runner.lr_at(hook, 7) == pytest.approx(0.01 + 0.5 * 0.19 * (math.cos(math.pi * 7 / 40) + 1))


def test_step_policy_counts_passed_milestones_and_floors_at_min_lr():
    assert regular_lr("step", 0.1, 0, 10, steps=(3, 6)) == pytest.approx(0.1)
    assert regular_lr("step", 0.1, 3, 10, steps=(3, 6)) == pytest.approx(0.01)
    assert regular_lr("step", 0.1, 7, 10, steps=(3, 6)) == pytest.approx(0.001)
    assert regular_lr("step", 0.1, 7, 10, steps=(3, 6), min_lr=0.005) == pytest.approx(0.005)


@pytest.mark.parametrize("kind, expected", [("constant", 0.1), ("linear", 1 - 0.75 * 0.9), ("exp", 0.1 ** 0.75)])
def test_warmup_factors(kind, expected):
    assert warmup_factor(kind, 25, 100, 0.1) == pytest.approx(expected)
    assert warmup_factor(kind, 100, 100, 0.1) == 1.0


def test_step_warmup_multiplies_the_current_epochs_lr():
    runner = FakeRunner(10, 4, 0.1)
    hook = LrScheduleHook("step", steps=(1,), gamma=0.5, warmup="linear", warmup_epochs=2, warmup_ratio=0.2)
    hook.before_run(runner)
    assert runner.lr_at(hook, 6) == pytest.approx(0.05 * (1 - (1 - 6 / 8) * 0.8))
    assert runner.lr_at(hook, 8) == pytest.approx(0.05)


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="lr_policy"):
        regular_lr("poly2", 0.1, 0, 10)
