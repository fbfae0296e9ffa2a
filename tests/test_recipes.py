"""Every shipped recipe, launcher config and launch script is valid, and documented in its family's README."""

import shutil
import subprocess
from pathlib import Path

import pytest

from accel_slowfast.recipe.io import load_recipe

RECIPES_DIR = Path(__file__).parents[1] / "recipes"
ACCELERATE_CONFIGS = sorted((RECIPES_DIR / "accelerate_configs").glob("*.yaml"))
TRAINING_RECIPES = sorted(p for p in RECIPES_DIR.glob("**/*.yaml") if p.parent.name != "accelerate_configs")
SCRIPTS = sorted(RECIPES_DIR.glob("**/*.sh"))


def _ids(paths):
    return [str(p.relative_to(RECIPES_DIR)) for p in paths]


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=_ids(TRAINING_RECIPES))
def test_training_recipe_loads_and_has_a_launch_header(path):
    recipe = load_recipe([str(path)])
    header = path.read_text().split("\n\n")[0]
    assert header.startswith("#") and "train.py" in header, f"{path}: start with a comment giving the command"
    assert recipe.work_dir != "work_dirs/synthetic_slowfast_tiny" or path.parent.name == "synthetic"


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=_ids(TRAINING_RECIPES))
def test_family_readme_documents_each_recipe(path):
    readme = path.parent / "README.md"
    assert readme.exists(), f"{path.parent} needs a README.md with the commands and the expected result"
    text = readme.read_text()
    assert path.name in text and "accelerate launch" in text


def test_finetune_recipes_start_from_kinetics_weights():
    finetune = [p for p in TRAINING_RECIPES if "finetune" in p.name]
    assert {p.parent.name for p in finetune} >= {"ucf101", "hmdb51"}
    for path in finetune:
        recipe = load_recipe([str(path)])
        assert recipe.load_from and not recipe.resume_from


def test_kinetics_recipes_read_lists():
    kinetics = [load_recipe([str(p)]) for p in TRAINING_RECIPES if p.parent.name == "kinetics400"]
    assert sorted(r.model for r in kinetics) == ["slowfast_r50_4x16", "slowfast_r50_8x8", "slowfast_r50_8x8"]
    assert all(r.dataset == "list" and r.num_classes == 400 for r in kinetics)


def test_published_figures_are_marked_as_theirs():
    for family in ("ucf101", "kinetics400"):
        text = (RECIPES_DIR / family / "README.md").read_text().lower()
        assert "published" in text and "not ours" in text


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=_ids(ACCELERATE_CONFIGS))
def test_accelerate_config_parses(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_processes >= 1 and config.compute_environment.value == "LOCAL_MACHINE"
    assert "accelerate launch --config_file recipes/accelerate_configs/" + path.name in path.read_text()


def test_the_four_launcher_configs_exist():
    assert {p.stem for p in ACCELERATE_CONFIGS} == {"cpu", "one_process", "multi_gpu", "multi_node"}


@pytest.mark.parametrize("path", SCRIPTS, ids=_ids(SCRIPTS))
def test_launch_script_is_valid_bash(path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert "#SBATCH" in text and "train.py" in text and "--resume_from=auto" in text  # (it requeues: resume)


def test_there_is_a_slurm_script():
    assert any("#SBATCH" in p.read_text() for p in SCRIPTS)
