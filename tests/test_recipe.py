import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from accel_slowfast.recipe.data import DECODERS
from accel_slowfast.recipe.io import load_recipe, packaged_recipes, recipe_diff, recipe_parser
from accel_slowfast.recipe.recipe import SECTIONS, Recipe, RecipeError

REPO = Path(__file__).parents[1]
RECIPES = sorted(p for p in REPO.glob("recipes/**/*.yaml")
                 if "accelerate_configs" not in p.parts)  # launcher configs: tests/test_recipes.py


def test_no_arguments_gives_the_synthetic_default():
    recipe = load_recipe([])
    assert recipe == Recipe() and recipe.dataset == "synthetic" and recipe.model == "slowfast_tiny"


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads_with_each_of_its_keys_applied(path):
    written = yaml.safe_load(path.read_text())
    recipe = load_recipe([str(path)])
    assert {key: getattr(recipe, key) for key in written} == written


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
    ("lr: !!python/object/apply:os.system [\"touch {marker}\"]\n", "line 1.*tag.*plain values only"),
    ("lr: [0.1\nbatch_size: 2\n", r"not a valid recipe \(line 2"),
    ("lr: 0.1\nbatch_size: 2\nlr: 0.2\n", r"key 'lr' is given twice \(lines 1 and 3\)"),
])
def test_bad_yaml_names_the_file_and_key(tmp_path, text, message):
    path, marker = tmp_path / "bad.yaml", tmp_path / "ran"
    path.write_text(text.replace("{marker}", str(marker)))
    with pytest.raises(RecipeError, match=f"^{path}: .*{message}"):
        load_recipe([str(path)])
    assert not marker.exists()


def test_a_binary_recipe_file_is_one_line(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe" * 10)
    with pytest.raises(RecipeError, match=f"^{path}: not a text file"):
        load_recipe([str(path)])


@pytest.mark.parametrize("argument, message", [
    ("--seed=-1", r"'seed' must be in \[0, 4294967295\], got -1"),
    ("--seed=99999999999", r"'seed' must be in \[0, 4294967295\], got 99999999999"),
    ("--dropout=2", r"'dropout' must be in \[0, 1\), got 2.0"),
    ("--dropout=-0.5", r"'dropout' must be in \[0, 1\), got -0.5"),
    ("--momentum=5", r"'momentum' must be in \[0, 1\], got 5.0"),
    ("--lr=1e300", r"'lr' must be in \[0, 3.40\d*e\+38\], got 1e\+300"),
    ("--min_lr=1e39", r"'min_lr' must be in \[0, 3.40\d*e\+38\]"),
    ("--work_dir=", "'work_dir' is empty"),
])
def test_out_of_range_numbers_and_an_empty_work_dir_fail_at_load(argument, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe([argument])


def test_the_largest_seed_and_learning_rate_still_load():
    recipe = load_recipe(["--seed=4294967295", "--lr=1e38", "--dropout=0", "--momentum=1"])
    assert recipe.seed == 2**32 - 1 and recipe.lr == 1e38


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
    (dict(mixup_alpha=-0.1), "'mixup_alpha' must be >= 0"),
    (dict(cutmix_alpha=1.0, batch_size=1), "batch_size >= 2"),
    (dict(mix_prob=1.5, mixup_alpha=0.8), r"'mix_prob' must be in \[0, 1\]"),
    (dict(mix_prob=0.5), "'mix_prob' applies only with mixup_alpha or cutmix_alpha on"),
    (dict(mix_switch_prob=0.3, cutmix_alpha=1.0), "'mix_switch_prob' applies only with mixup_alpha and cutmix_alpha"),
    (dict(label_smoothing=1.0), r"'label_smoothing' must be in \[0, 1\)"),
    (dict(rand_augment=True, rand_augment_magnitude=11), r"'rand_augment_magnitude' must be in \[0, 10\]"),
    (dict(rand_augment_layers=4), "'rand_augment_layers' applies only with rand_augment on"),
    (dict(random_erasing=-0.25), r"'random_erasing' must be in \[0, 1\]"),
    (dict(decoder_device="cuda"), "decoder_device 'cuda' decodes with torchcodec's NVDEC.*--decoder=torchcodec"),
    (dict(decoder="torchcodec", decoder_device="cuda"), "main process.*--num_workers=0"),
    (dict(num_repeats=0), "'num_repeats' must be >= 1"),
    (dict(num_repeats=3, batch_size=16), r"^recipe key 'batch_size' \(16\) counts clips, 3 per video \(num_repeats\): "
                                         r"make it a multiple, e.g. --batch_size=15$"),
    (dict(sample_once=True), "^recipe key 'sample_once' applies only with num_repeats > 1"),
    (dict(num_repeats=2, multigrid_short_cycle=True), "^recipe key 'num_repeats' does not combine with multigrid"),
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
    path = REPO / "recipes/synthetic/slowfast_tiny.yaml"
    assert load_recipe([str(path)]) == Recipe()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_naming_the_key(value):
    with pytest.raises(RecipeError, match=f"'lr' must be a finite number, got {value}$"):
        load_recipe([f"--lr={value}"])
    with pytest.raises(RecipeError, match="'mean' must be a finite number"):
        load_recipe(["--mean", "1.0", value.lstrip("-"), "2.0"])  # (argparse reads -inf as a flag)


def test_every_key_is_in_a_help_group():
    groups = {f.name: section.GROUP for section in SECTIONS for f in dataclasses.fields(section)}
    assert set(groups) == {f.name for f in dataclasses.fields(Recipe)}  # every key in exactly one section
    assert sum(len(dataclasses.fields(section)) for section in SECTIONS) == len(groups)
    names = [section.GROUP for section in SECTIONS]
    help_text = recipe_parser("train.py").format_help()
    for section, following in zip(names, [*names[1:], None], strict=True):
        body = help_text.split(f"\n{section}:\n")[1]
        body = body.split(f"\n{following}:\n")[0] if following else body
        listed = set(re.findall(r"^  --(\w+)", body, re.M))
        listed -= {f"no_{key}" for key in groups}  # HfArgumentParser's --no_<key> of the bools that default to true
        assert {key for key, group in groups.items() if group == section} == listed


def test_a_command_line_typo_names_the_closest_key():
    with pytest.raises(RecipeError, match=r"^--lrr=0\.1: unknown recipe key 'lrr'; did you mean 'lr'\?$"):
        load_recipe(["--lrr=0.1"])
    with pytest.raises(RecipeError, match=r"^--warmup_ratoi: unknown recipe key 'warmup_ratoi'; did you mean"):
        load_recipe(["--warmup_ratoi", "0.2"])


@pytest.mark.parametrize("args, expected", [
    (["--deterministic"], True), (["--deterministic=false"], False), (["--by_epoch", "no"], False),
])
def test_command_line_bools(args, expected):
    assert load_recipe(args).to_dict()[args[0][2:].split("=")[0]] is expected


SEED_RECIPE = "ucf101/slowfast_r50_4x16x1_256e.yaml"


@pytest.mark.parametrize("name", [SEED_RECIPE, f"recipes/{SEED_RECIPE}"])
def test_a_shipped_recipe_is_found_by_name_from_any_folder(name, tmp_path, monkeypatch):
    expected = load_recipe([str(REPO / "recipes" / SEED_RECIPE)])
    monkeypatch.chdir(tmp_path)
    assert load_recipe([name, "--split=2"]) == dataclasses.replace(expected, split=2)
    assert "synthetic/slowfast_tiny.yaml" in packaged_recipes()


def test_decoder_torchcodec_without_the_package_names_the_extra(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torchcodec" else find_spec(name))
    with pytest.raises(RecipeError, match=r"pip install 'accel_slowfast\[torchcodec\]'"):
        Recipe(decoder="torchcodec")


def test_the_decoder_names_are_the_decoders():
    from accel_slowfast.data.decoding import DECODERS as DECODER_CLASSES

    assert set(DECODERS) == set(DECODER_CLASSES)


def test_recipe_diff_lists_what_differs_from_the_defaults():
    assert recipe_diff(Recipe()) == "(none: the defaults)"
    assert recipe_diff(Recipe(lr=0.1, lr_steps=[2, 4], lr_policy="step")) == \
        "lr: 0.1\nlr_policy: step\nlr_steps:\n- 2\n- 4"
