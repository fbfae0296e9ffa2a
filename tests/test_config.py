from pathlib import Path

import pytest

from accel_slowfast.config import Recipe, RecipeError, load_recipe

RECIPES = sorted(p for p in Path(__file__).parents[1].glob("recipes/**/*.yaml")
                 if "accelerate_configs" not in p.parts)  # launcher configs: tests/test_recipes.py


def test_no_arguments_gives_the_synthetic_default():
    recipe = load_recipe([])
    assert recipe == Recipe() and recipe.dataset == "synthetic" and recipe.model == "slowfast_tiny"


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads(path):
    load_recipe([str(path)])


def test_shipped_recipes_include_the_seed():
    assert any(p.name == "slowfast_r50_4x16x1_256e.yaml" for p in RECIPES)


def test_cli_overrides_win_over_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("lr: 1.0e-4\nbatch_size: 2\n")
    recipe = load_recipe([str(path), "--batch_size=3", "--lr_steps", "4", "6"])
    assert recipe.lr == 1e-4 and recipe.batch_size == 3 and recipe.lr_steps == [4, 6]


@pytest.mark.parametrize("text, message", [
    ("lr: 1e-4\n", "'lr' must be float, got '1e-4'.*write 1.0e-4"),
    ("lrr: 0.1\n", "unknown recipe key 'lrr'; did you mean 'lr'"),
    ("batch_size: 2.5\n", "'batch_size' must be int"),
    ("deterministic: 1\n", "'deterministic' must be bool"),
    ("mean: 0.5\n", "'mean' must be a list"),
    ("- a\n", "mapping"),
])
def test_bad_yaml_names_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe([str(path)])


@pytest.mark.parametrize("overrides, message", [
    (dict(model="slowfast_r18"), "'model'"),
    (dict(clip_len=18), "'clip_len'.*alpha.*clip_len=16"),
    (dict(dataset="ucf101"), "'data_root'.*'annotation_dir'"),
    (dict(lr_policy="step"), "lr_steps"),
    (dict(warmup="linear", warmup_epochs=0), "warmup_epochs"),
    (dict(resume_from="auto", load_from="x.pth"), "resume_from"),
    (dict(batch_size=0), "'batch_size' must be >= 1"),
    (dict(mixed_precision="fp8"), "'mixed_precision'"),
    (dict(crop_size=300), "'crop_size'"),
])
def test_impossible_combinations_fail_before_work(overrides, message):
    with pytest.raises(RecipeError, match=message):
        Recipe(**overrides)


def test_unknown_cli_argument_is_an_error():
    with pytest.raises(RecipeError, match="--foo"):
        load_recipe(["--foo=1"])


def test_missing_recipe_file():
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(["nope.yaml"])


def test_the_default_recipe_file_equals_the_defaults():
    path = Path(__file__).parents[1] / "recipes/synthetic/slowfast_tiny.yaml"
    assert load_recipe([str(path)]) == Recipe()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_naming_the_key(value):
    with pytest.raises(RecipeError, match=f"'lr' must be a finite number, got {value}$"):
        load_recipe([f"--lr={value}"])
    with pytest.raises(RecipeError, match="'mean' must be a finite number"):
        load_recipe(["--mean", "1.0", value.lstrip("-"), "2.0"])  # (argparse reads -inf as a flag)
