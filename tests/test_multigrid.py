"""The multigrid schedule (accel_slowfast/multigrid.py): PySlowFast's table, each epoch's shapes and LR, the checks."""

import pytest

from accel_slowfast.errors import RecipeError
from accel_slowfast.multigrid import MultigridSchedule, Shape, long_cycle_stages
from accel_slowfast.recipe.recipe import Recipe

# PySlowFast's SLOWFAST_8x8_R50_stepwise_multigrid (32 frames, 224 px, steps 94/154/196 of 239 epochs,
# EPOCH_FACTOR 1.5) with the factor folded into the epochs: (end epoch, lr stage, frames, crop, batch factor).
ANCHOR = [(73, 0, 8, 158, 8), (110, 0, 16, 158, 4), (142, 0, 16, 224, 2), (158, 0, 32, 224, 1),
          (204, 1, 8, 158, 8), (228, 1, 16, 158, 4), (248, 1, 16, 224, 2), (258, 1, 32, 224, 1),
          (291, 2, 8, 158, 8), (307, 2, 16, 158, 4), (322, 2, 16, 224, 2), (329, 2, 32, 224, 1),
          (343, 2, 32, 224, 1), (358, 3, 32, 224, 1)]  # the fine-tuning: two halves, the second one decay lower


def _table(stages):
    return [(s.end_epoch, s.lr_stage, s.clip_len, s.crop_size, s.batch_factor) for s in stages]


def test_the_long_and_short_cycle_give_pyslowfasts_table_for_its_kinetics_multigrid_config():
    assert _table(long_cycle_stages([141, 231, 294], 358, 32, 224, short_cycle=True)) == ANCHOR


def test_the_shipped_kinetics_multigrid_recipe_is_that_config():
    from accel_slowfast.recipe.io import load_recipe

    recipe = load_recipe(["recipes/kinetics400/slowfast_r50_8x8x1_multigrid.yaml"])
    assert _table(MultigridSchedule(recipe).stages) == ANCHOR


def test_without_the_short_cycle_each_shape_gets_epochs_in_proportion_to_its_batch_factor():
    stages = long_cycle_stages([141, 231, 294], 358, 32, 224, short_cycle=False)
    assert [s.end_epoch for s in stages[:4]] == [87, 130, 151, 162]  # 87:43:21:11 ~ 8:4:2:1
    assert stages[-1].end_epoch == 358


def _recipe(**overrides):
    keys = dict(model="slowfast_r50_8x8", clip_len=32, crop_size=224, short_side=256, batch_size=8, lr_policy="step",
                lr_steps=[141, 231, 294], max_epochs=358, multigrid_long_cycle=True, multigrid_short_cycle=True)
    return Recipe(**{**keys, **overrides})


def test_each_epoch_has_its_shapes_with_the_clip_spanning_the_same_time():
    schedule = MultigridSchedule(_recipe())
    assert schedule.shapes(0) == [Shape(128, 8, 8, 112), Shape(64, 8, 8, 158), Shape(64, 8, 8, 158)]
    assert schedule.shapes(141) == [Shape(64, 16, 4, 112), Shape(32, 16, 4, 158), Shape(16, 16, 4, 224)]
    assert schedule.shapes(357) == [Shape(32, 32, 2, 112), Shape(16, 32, 2, 158), Shape(8, 32, 2, 224)]
    assert MultigridSchedule(_recipe(multigrid_long_cycle=False, lr_policy="cosine")).shapes(0) == [
        Shape(32, 32, 2, 112), Shape(16, 32, 2, 158), Shape(8, 32, 2, 224)]
    assert MultigridSchedule(_recipe(multigrid_short_cycle=False)).shapes(0) == [Shape(64, 8, 8, 158)]


@pytest.mark.parametrize(("epoch", "factor"), [(0, 8), (72, 8), (73, 4), (157, 1), (158, 0.8), (328, 0.01),
                                               (342, 0.01), (343, 0.001)])
def test_the_lr_scales_with_the_long_cycles_batch_factor_and_the_decays_passed(epoch, factor):
    assert MultigridSchedule(_recipe()).lr_factor(epoch) == pytest.approx(factor)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(lr_policy="cosine"), "needs lr_policy: step with lr_steps"),
    (dict(gradient_accumulation_steps=2), "set gradient_accumulation_steps: 1"),
    (dict(multigrid_long_cycle=False, lr_policy="cosine", warmup_iters=100), "set warmup_iters: 0"),
    (dict(lr_steps=[141, 358]), "must be below max_epochs (358)"),
    (dict(clip_len=8), "2 frames, which must be a multiple of the model's alpha (4)"),
])
def test_combinations_multigrid_cannot_run_fail_at_load_naming_the_key(overrides, message):
    with pytest.raises(RecipeError, match="multigrid") as error:
        _recipe(**overrides)
    assert message in str(error.value) and "\n" not in str(error.value)
