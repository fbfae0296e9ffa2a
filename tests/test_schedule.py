"""Schedules against mmcv 1.x's formulas.

Expected values are literal numbers or small formulas written here from mmcv's definitions,
never produced by the code under test.
"""

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from accel_slowfast.engine.schedule import (
    Position,
    build_lr_schedule,
    build_momentum_schedule,
    scaled_lr,
    set_lr_and_momentum,
)
from accel_slowfast.recipe.recipe import Recipe, RecipeError
from accel_slowfast.schedule_formulas import LR_POLICIES, annealing_cos, regular_lr, warmup_factor

DEFAULTS = Recipe()


def lr_schedule(lr_policy, lr=0.2, **keys):
    """``build_lr_schedule`` of the default recipe with ``lr`` and without warmup, ``keys`` changed. Not a
    validated ``Recipe``: the grid also runs one-cycle under each warmup, which one-cycle ignores and a recipe
    refuses."""
    recipe = SimpleNamespace(**{**DEFAULTS.to_dict(), "warmup": "none", "lr_policy": lr_policy, "lr": lr, **keys})
    return build_lr_schedule(recipe, scaled_lr(recipe, num_processes=1))


def from_recipe(recipe):
    return build_lr_schedule(recipe.schedule_args, scaled_lr(recipe.optimization_args, num_processes=1))


def momentum_schedule(momentum_policy, by_epoch=DEFAULTS.by_epoch, momentum=0.9, **args):
    """``build_momentum_schedule`` with the default recipe's values for the formula's keys ``args`` leaves out
    (``args`` may add cyclic's ``gamma`` and ``anneal_strategy``, which have no recipe key)."""
    schedule = build_momentum_schedule(SimpleNamespace(**{**DEFAULTS.to_dict(), "momentum_policy": momentum_policy}),
                                       momentum)
    return dataclasses.replace(schedule, by_epoch=by_epoch, policy_keys={**schedule.policy_keys, **args})


class FakeRunner:
    """The runner's position, and an optimizer the schedules' values are written into (as the runner does)."""

    def __init__(self, max_epochs, iters_per_epoch, base_lr, optimizer=None):
        self.max_epochs, self.max_iters = max_epochs, max_epochs * iters_per_epoch
        self.data_loader = range(iters_per_epoch)
        self.optimizer = optimizer or torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
        self.epoch = self.iter = 0

    def go_to(self, cur_iter):
        self.iter, self.epoch = cur_iter, cur_iter // len(self.data_loader)

    def position(self):
        per_epoch = len(self.data_loader)
        return Position(self.epoch, self.iter, self.iter % per_epoch, per_epoch, self.max_epochs, self.max_iters)

    def lr_at(self, hook, cur_iter):
        self.go_to(cur_iter)
        set_lr_and_momentum(self.optimizer, hook(self.position()), None)
        return self.optimizer.param_groups[0]["lr"]


def lrs(hook, runner, iters):
    hook.check_run(runner.max_epochs, runner.max_iters)
    return [runner.lr_at(hook, i) for i in iters]


# The seed recipe: base 0.1, 256 epochs, 34 linear warmup epochs, ratio 0.1, 100 iterations/epoch.
SEED_TABLE = [(0, 1.0e-2), (1, 1.002647e-2), (100, 1.264658e-2), (3399, 9.593029e-2), (3400, 9.571049e-2),
              (12800, 5.0e-2), (25500, 3.764908e-6)]


@pytest.mark.parametrize("cur_iter, expected", SEED_TABLE)
def test_seed_recipe_lr_matches_mmcv_table(cur_iter, expected):
    runner = FakeRunner(256, 100, 0.1)
    hook = lr_schedule("cosine", lr=0.1, warmup="linear", warmup_epochs=34, warmup_ratio=0.1)
    assert runner.lr_at(hook, cur_iter) == pytest.approx(expected, rel=1e-6)


def test_seed_recipe_file_builds_the_table_schedule():
    recipe = Recipe(lr=0.1, max_epochs=256, lr_policy="cosine", min_lr=0.0, warmup="linear", warmup_epochs=34)
    runner = FakeRunner(256, 100, 0.1)
    assert lrs(from_recipe(recipe), runner, [3399, 25500]) == pytest.approx([9.593029e-2, 3.764908e-6], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Every policy x warmup, by epoch and by iteration: 6 epochs x 5 iterations, base LR 0.2.
# The expected regular LR of each policy is mmcv's formula, written out below.
BASE, EPOCHS, PER_EPOCH = 0.2, 6, 5
ITERS = EPOCHS * PER_EPOCH


def cos_anneal(start, end, factor, weight=1.0):
    return end + weight * (start - end) * (1 + math.cos(math.pi * factor)) / 2


def policy_case(name, by_epoch):
    """(policy, schedule arguments, regular LR at progress p) for the unit of ``by_epoch``."""
    total = EPOCHS if by_epoch else ITERS  # max_progress
    unit = 1 if by_epoch else PER_EPOCH  # progress per epoch
    if name == "fixed":
        return "fixed", {}, lambda p: BASE
    if name == "step":
        milestones = (2 * unit, 4 * unit)
        return ("step", dict(lr_steps=milestones, lr_gamma=0.3, min_lr=0.03),
                lambda p: max(BASE * 0.3 ** len([m for m in milestones if p >= m]), 0.03))
    if name == "step-every":
        return "step", dict(lr_step_every=2 * unit, lr_gamma=0.5), lambda p: BASE * 0.5 ** math.floor(p / (2 * unit))
    if name == "exp":
        return "exp", dict(lr_gamma=0.9 if by_epoch else 0.98), lambda p: BASE * (0.9 if by_epoch else 0.98) ** p
    if name == "poly":
        return "poly", dict(lr_power=2.0, min_lr=0.01), lambda p: 0.01 + 0.19 * (1 - p / total) ** 2
    if name == "inv":
        return "inv", dict(lr_gamma=0.5, lr_power=0.75), lambda p: BASE / (1 + 0.5 * p) ** 0.75
    if name == "cosine":
        return "cosine", dict(min_lr=0.01), lambda p: cos_anneal(BASE, 0.01, p / total)
    if name == "cosine-ratio":
        return "cosine", dict(min_lr_ratio=0.05), lambda p: cos_anneal(BASE, 0.01, p / total)
    if name == "flat-cosine":
        start = 4 if by_epoch else 22  # round(6 * 0.75) and round(30 * 0.75): halves round to even, as in mmcv
        return ("flat-cosine", dict(flat_cosine_start=0.75, min_lr=0.01),
                lambda p: BASE if p < start else cos_anneal(BASE, 0.01, (p - start) / (total - start)))
    if name == "cosine-restart":
        first, second = 2 * unit, 4 * unit
        return ("cosine-restart", dict(restart_periods=(first, second), restart_weights=(1.0, 0.5), min_lr=0.01),
                lambda p: cos_anneal(BASE, 0.01, p / first) if p < first
                else cos_anneal(BASE, 0.01, (p - first) / second, 0.5))
    if name == "one-cycle":  # always per iteration: up to 0.2 by iteration 0.3 * 30 - 1 = 8, then down
        low, floor = BASE / 25, BASE / 25 / 1e4
        return ("one-cycle", dict(one_cycle_pct_start=0.3),
                lambda i: cos_anneal(low, BASE, i / 8) if i <= 8 else cos_anneal(BASE, floor, (i - 8) / 21))
    raise AssertionError(name)


POLICY_CASES = ["fixed", "step", "step-every", "exp", "poly", "inv", "cosine", "cosine-ratio", "flat-cosine",
                "cosine-restart", "one-cycle"]
WARMUP_CASES = [  # (warmup, length arguments, warmup iterations, factor at iteration i < W)
    ("none", {}, 0, None),
    ("constant", dict(warmup_epochs=2), 10, lambda i, w: 0.25),
    ("constant", dict(warmup_iters=7), 7, lambda i, w: 0.25),
    ("linear", dict(warmup_epochs=2), 10, lambda i, w: 0.25 + 0.75 * i / w),
    ("linear", dict(warmup_iters=7), 7, lambda i, w: 0.25 + 0.75 * i / w),
    ("exp", dict(warmup_epochs=2), 10, lambda i, w: math.exp((1 - i / w) * math.log(0.25))),
    ("exp", dict(warmup_iters=7, warmup_epochs=3), 7, lambda i, w: math.exp((1 - i / w) * math.log(0.25))),
]


def test_the_grid_covers_every_policy():
    assert {policy_case(name, True)[0] for name in POLICY_CASES} == set(LR_POLICIES)


@pytest.mark.parametrize("warmup, length, warmup_iters, factor", WARMUP_CASES,
                         ids=[f"{w[0]}-{next(iter(w[1]), 'off')}" for w in WARMUP_CASES])
@pytest.mark.parametrize("by_epoch", [True, False], ids=["by_epoch", "by_iter"])
@pytest.mark.parametrize("name", POLICY_CASES)
def test_every_policy_and_warmup_matches_the_formulas(name, by_epoch, warmup, length, warmup_iters, factor):
    policy, args, regular = policy_case(name, by_epoch)
    hook = lr_schedule(policy, by_epoch=by_epoch, warmup=warmup, warmup_ratio=0.25, **length, **args)
    expected = []
    for i in range(ITERS):
        lr = regular(i if policy == "one-cycle" or not by_epoch else i // PER_EPOCH)
        if policy != "one-cycle" and i < warmup_iters:  # one-cycle's rise is its warm-up
            lr *= factor(i, warmup_iters)
        expected.append(lr)
    assert lrs(hook, FakeRunner(EPOCHS, PER_EPOCH, BASE), range(ITERS)) == pytest.approx(expected, rel=1e-12)


# Hand-checked points of the same runs (literal numbers).
LITERALS = [
    ("step", True, dict(lr_steps=(2, 4), lr_gamma=0.3, min_lr=0.03), {}, [(9, 0.2), (12, 0.06), (24, 0.03)]),
    ("step", False, dict(lr_step_every=7, lr_gamma=0.5), {}, [(13, 0.1), (14, 0.05)]),
    ("exp", True, dict(lr_gamma=0.8), {}, [(12, 0.128)]),
    ("poly", True, dict(lr_power=2.0, min_lr=0.01), {}, [(15, 0.0575)]),
    ("inv", False, dict(lr_gamma=0.5, lr_power=0.75), {}, [(2, 0.11892071150027211)]),
    ("cosine", True, dict(min_lr_ratio=0.05), {}, [(15, 0.105), (29, 0.01 + 0.095 * (1 + math.cos(math.pi / 6 * 5)))]),
    ("flat-cosine", True, dict(min_lr=0.01), {}, [(24, 0.2), (25, 0.105)]),
    ("flat-cosine", False, dict(min_lr=0.01), {}, [(21, 0.2), (22, 0.2), (26, 0.105)]),
    ("cosine-restart", True, dict(restart_periods=(2, 4), restart_weights=(1.0, 0.5), min_lr=0.01), {},
     [(5, 0.105), (10, 0.105), (20, 0.0575)]),
    ("one-cycle", False, {}, {}, [(0, 0.008), (2, 0.036117749006091465), (8, 0.2), (18, 0.107473379466605),
                                  (29, 8.0e-7)]),
    ("one-cycle", False, dict(one_cycle_anneal="linear"), {}, [(2, 0.056), (8, 0.2)]),
    ("one-cycle", False, dict(one_cycle_three_phase=True), {}, [(8, 0.2), (16, 0.008), (29, 8.0e-7)]),
    ("one-cycle", False, dict(one_cycle_total_steps=40, one_cycle_div_factor=10.0, one_cycle_final_div_factor=100.0),
     {}, [(0, 0.02), (11, 0.2)]),
    ("cosine", True, {}, dict(warmup="linear", warmup_epochs=2, warmup_ratio=0.1), [(5, 0.10263139720814415)]),
    ("fixed", False, {}, dict(warmup="exp", warmup_iters=7, warmup_ratio=0.1), [(0, 0.02), (5, 0.10358949358462424),
                                                                              (7, 0.2)]),
    ("fixed", True, {}, dict(warmup="constant", warmup_iters=7, warmup_ratio=0.1), [(6, 0.02), (7, 0.2)]),
]


@pytest.mark.parametrize("policy, by_epoch, args, warmup, points", LITERALS)
def test_hand_checked_values(policy, by_epoch, args, warmup, points):
    hook = lr_schedule(policy, by_epoch=by_epoch, **warmup, **args)
    iters, expected = zip(*points, strict=True)
    assert lrs(hook, FakeRunner(EPOCHS, PER_EPOCH, BASE), iters) == pytest.approx(expected, rel=1e-9)


def test_lr_constant_within_an_epoch_when_by_epoch_and_after_warmup():
    runner = FakeRunner(10, 5, 0.1)
    values = lrs(lr_schedule("cosine", lr=0.1), runner, range(10, 15))
    assert values == [pytest.approx(0.05 * (1 + math.cos(math.pi * 0.2)))] * 5


def test_step_warmup_multiplies_the_current_epochs_lr():
    runner = FakeRunner(10, 4, 0.1)
    hook = lr_schedule("step", lr=0.1, lr_steps=(1,), lr_gamma=0.5, warmup="linear", warmup_epochs=2, warmup_ratio=0.2)
    assert lrs(hook, runner, [6, 8]) == pytest.approx([0.05 * (1 - (1 - 6 / 8) * 0.8), 0.05])


@pytest.mark.parametrize("kind, expected", [("constant", 0.1), ("linear", 1 - 0.75 * 0.9), ("exp", 0.1 ** 0.75)])
def test_warmup_factors(kind, expected):
    assert warmup_factor(kind, 25, 100, 0.1) == pytest.approx(expected)
    assert warmup_factor(kind, 100, 100, 0.1) == 1.0


def test_annealing_cos_weight_starts_between_start_and_end():
    assert annealing_cos(1.0, 0.0, 0.0, 0.5) == pytest.approx(0.5)
    assert annealing_cos(1.0, 0.2, 1.0, 0.5) == pytest.approx(0.2)


def test_unknown_policy_and_arguments_are_rejected():
    with pytest.raises(ValueError, match="lr_policy"):
        regular_lr("poly2", 0.1, 0, 10, **lr_schedule("cosine").policy_keys)
    with pytest.raises(ValueError, match="lr_policy"):
        lr_schedule("poly2")
    with pytest.raises(TypeError, match="min_lr"):
        one_cycle = lr_schedule("one-cycle")
        dataclasses.replace(one_cycle, policy_keys={**one_cycle.policy_keys, "min_lr": 0.1})(
            FakeRunner(EPOCHS, PER_EPOCH, BASE).position())


def test_run_length_checks_happen_before_the_first_iteration():
    runner = FakeRunner(EPOCHS, PER_EPOCH, BASE)
    with pytest.raises(ValueError, match="one_cycle_total_steps"):
        lrs(lr_schedule("one-cycle", one_cycle_total_steps=20), runner, [])
    with pytest.raises(ValueError, match="restart_periods cover 20 iterations"):
        lrs(lr_schedule("cosine-restart", by_epoch=False, restart_periods=(10, 10)), runner, [])


def test_a_loaded_optimizer_state_leaves_the_lr_schedule_as_it_was():
    runner = FakeRunner(EPOCHS, PER_EPOCH, BASE)
    hook = lr_schedule("cosine")
    lrs(hook, runner, [12])
    state = runner.optimizer.state_dict()
    resumed = FakeRunner(EPOCHS, PER_EPOCH, 0.123)
    resumed.optimizer.load_state_dict(state)
    assert lrs(lr_schedule("cosine"), resumed, [15]) == pytest.approx([0.1])


# ---------------------------------------------------------------------------------------------
# Momentum: SGD's momentum 0.9 (or Adam's beta1), 6 epochs x 5 iterations.
def sgd(momentum=0.9):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=momentum)


def momenta(hook, runner, iters, read=lambda group: group["momentum"]):
    hook.check_run(runner.max_epochs, runner.max_iters)
    values = []
    for i in iters:
        runner.go_to(i)
        set_lr_and_momentum(runner.optimizer, None, hook(runner.position()))
        values.append(read(runner.optimizer.param_groups[0]))
    return values


MOMENTUM_CASES = [  # (policy, by_epoch, hook arguments, [(iteration, momentum)])
    ("step", True, dict(momentum_steps=(2, 4), momentum_gamma=0.5, min_momentum=0.3),
     [(9, 0.9), (10, 0.45), (19, 0.45), (20, 0.3)]),
    ("step", False, dict(momentum_step_every=7, momentum_gamma=0.5), [(6, 0.9), (7, 0.45), (14, 0.225)]),
    ("cosine", True, dict(min_momentum_ratio=0.5), [(4, 0.9), (15, 0.675), (29, 0.45 + 0.225 * (1 - 3 ** 0.5 / 2))]),
    ("cosine", False, dict(min_momentum=0.8), [(15, 0.85), (10, 0.8 + 0.05 * (1 + math.cos(math.pi / 3)))]),
    # 2 cycles of 15 iterations, 6 down (int(0.4 * 15)) then 9 up; 0.9 -> 0.8 -> 0.9
    ("cyclic", True, dict(momentum_target_ratio=(0.8 / 0.9, 1.0), momentum_cyclic_times=2),
     [(0, 0.9), (3, 0.85), (6, 0.8), (10, 0.8 + 0.05 * (1 - math.cos(math.pi * 4 / 9))), (15, 0.9), (21, 0.8)]),
    # gamma 0.5: the second cycle dips half as far (to 0.85); linear shape
    ("cyclic", False, dict(momentum_target_ratio=(0.8 / 0.9, 1.0), momentum_cyclic_times=2, gamma=0.5,
                           anneal_strategy="linear"),
     [(3, 0.85), (6, 0.8), (9, 0.8 + 0.1 / 3), (18, 0.875), (21, 0.85), (27, 0.85 + 0.05 * 6 / 9)]),
    # mmcv's default: 0.9 x 0.85 / 0.95 at 40 % of the run, back to 0.9 at the end
    ("cyclic", False, {}, [(0, 0.9), (12, 0.9 * 0.85 / 0.95), (29, 0.9 * 0.85 / 0.95 + 0.9 * 0.1 / 0.95 * 0.5
                                                                      * (1 - math.cos(math.pi * 17 / 18)))]),
]


@pytest.mark.parametrize("policy, by_epoch, args, points", MOMENTUM_CASES)
def test_momentum_schedules_match_the_formulas(policy, by_epoch, args, points):
    hook = momentum_schedule(policy, by_epoch=by_epoch, **args)
    iters, expected = zip(*points, strict=True)
    runner = FakeRunner(EPOCHS, PER_EPOCH, BASE, optimizer=sgd())
    assert momenta(hook, runner, iters) == pytest.approx(expected, rel=1e-12)


def test_momentum_sets_adams_beta1_and_keeps_beta2():
    adam = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.1, betas=(0.9, 0.99))
    runner = FakeRunner(EPOCHS, PER_EPOCH, BASE, optimizer=adam)
    values = momenta(momentum_schedule("step", momentum_steps=(2,)), runner, [0, 10], read=lambda group: group["betas"])
    assert values == [pytest.approx((0.9, 0.99)), pytest.approx((0.45, 0.99))]


def test_a_loaded_optimizer_state_leaves_the_momentum_schedule_as_it_was():
    runner = FakeRunner(EPOCHS, PER_EPOCH, BASE, optimizer=sgd(0.9))
    momenta(momentum_schedule("step", momentum_steps=(2,)), runner, [12])
    resumed = FakeRunner(EPOCHS, PER_EPOCH, BASE, optimizer=sgd(0.45))
    resumed.optimizer.load_state_dict(runner.optimizer.state_dict())
    assert momenta(momentum_schedule("step", momentum_steps=(2,)), resumed, [0]) == [0.9]


# ---------------------------------------------------------------------------------------------
# Recipe keys -> schedules, and validation before any work.
def test_recipe_builds_each_policy_with_its_keys():
    recipe = Recipe(lr=0.2, max_epochs=6, lr_policy="cosine-restart", restart_periods=[2, 4],
                    restart_weights=[1.0, 0.5], min_lr=0.01, warmup="none")
    assert lrs(from_recipe(recipe), FakeRunner(6, 5, 0.2), [10, 20]) == pytest.approx([0.105, 0.0575])
    recipe = Recipe(lr=0.2, max_epochs=6, lr_policy="one-cycle", one_cycle_anneal="linear", warmup="none")
    assert lrs(from_recipe(recipe), FakeRunner(6, 5, 0.2), [2, 8]) == pytest.approx([0.056, 0.2])
    recipe = Recipe(lr=0.2, max_epochs=6, lr_policy="poly", lr_power=2.0, min_lr=0.01, warmup="linear",
                    warmup_iters=7, warmup_epochs=20, warmup_ratio=0.5)
    assert lrs(from_recipe(recipe), FakeRunner(6, 5, 0.2), [0, 15]) == pytest.approx([0.1, 0.0575])


def test_recipe_builds_momentum_schedules():
    assert build_momentum_schedule(Recipe(), 0.9) is None
    hook = build_momentum_schedule(Recipe(optimizer="sgd", momentum_policy="step", momentum_step_every=2,
                                          momentum_gamma=0.5), 0.9)
    runner = FakeRunner(6, 5, 0.2, optimizer=sgd())
    assert momenta(hook, runner, [9, 10]) == pytest.approx([0.9, 0.45])
    hook = build_momentum_schedule(Recipe(momentum_policy="cyclic", momentum_target_ratio=[0.8 / 0.9, 1.0]), 0.9)
    assert momenta(hook, FakeRunner(6, 5, 0.2, optimizer=sgd()), [12]) == pytest.approx([0.8])


@pytest.mark.parametrize("overrides, message", [
    (dict(lr_policy="step"), "'lr_steps'.*or 'lr_step_every'"),
    (dict(lr_policy="step", lr_steps=[3, 2]), "'lr_steps' must be positive and increasing"),
    (dict(lr_policy="step", lr_steps=[2], lr_step_every=3), "not both"),
    (dict(lr_policy="step", lr_steps=[2], min_lr_ratio=0.1), "'min_lr_ratio' applies to.*use 'min_lr'"),
    (dict(min_lr=0.1, min_lr_ratio=0.1), "'min_lr'.*or 'min_lr_ratio'.*not both"),
    (dict(lr_policy="cosine-restart"), "needs 'restart_periods'"),
    (dict(lr_policy="cosine-restart", restart_periods=[4], max_epochs=10), "'restart_periods' covers 4.*lengthen"),
    (dict(lr_policy="cosine-restart", restart_periods=[5, 5], restart_weights=[1.0]), "'restart_weights'"),
    (dict(lr_policy="flat-cosine", flat_cosine_start=1.0), "'flat_cosine_start' must be in"),
    (dict(lr_policy="one-cycle"), "set warmup: none"),
    (dict(one_cycle_anneal="cosine"), "'one_cycle_anneal'"),
    (dict(lr_policy="exp", lr_gamma=0.0), "'lr_gamma' must be > 0"),
    (dict(warmup_epochs=0), "'warmup_epochs' > 0 or 'warmup_iters' > 0"),
    (dict(warmup_ratio=1.5), "'warmup_ratio' must be in"),
    (dict(warmup_epochs=11, max_epochs=10), "'warmup_epochs'.*exceeds"),
    (dict(momentum_policy="sgdr"), "'momentum_policy'"),
    (dict(momentum_policy="step"), "'momentum_steps'.*or 'momentum_step_every'"),
    (dict(momentum_policy="cosine", optimizer="sgd", momentum=0.0), "set momentum"),
    (dict(momentum_policy="step", momentum_steps=[2], min_momentum_ratio=0.5), "'min_momentum_ratio' applies"),
    (dict(momentum_policy="cyclic", momentum_target_ratio=[0.9]), "'momentum_target_ratio' needs 2 values"),
])
def test_impossible_schedules_fail_before_work(overrides, message):
    with pytest.raises(RecipeError, match=message):
        Recipe(**overrides)


def test_warmup_iters_replaces_warmup_epochs():
    recipe = Recipe(warmup_iters=7, warmup_epochs=20, max_epochs=30, lr_policy="fixed", warmup="constant")
    runner = FakeRunner(max_epochs=30, iters_per_epoch=5, base_lr=recipe.lr)
    # 7 warmup iterations (20 epochs would be 100): constant warmup at warmup_ratio, then the base LR
    assert lrs(from_recipe(recipe), runner, [6, 7]) == [pytest.approx(recipe.lr * recipe.warmup_ratio), recipe.lr]
    Recipe(warmup="none", lr_policy="one-cycle", by_epoch=True)  # one-cycle ignores by_epoch
