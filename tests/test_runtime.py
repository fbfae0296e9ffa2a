"""The Accelerator every command builds: the recipe's precision wins, else Accelerate's (launcher, config, env)."""

import os
import subprocess

import pytest
import yaml
from conftest import REPO, TINY

from accel_slowfast.config import Recipe
from accel_slowfast.runtime import build_accelerator, describe


@pytest.mark.parametrize(("recipe_value", "environment", "expected", "source"), [
    ("", "bf16", "bf16", "from Accelerate"), ("no", "bf16", "no", "from the recipe"),
    ("bf16", "no", "bf16", "from the recipe"), ("", None, "no", "from Accelerate")])
def test_the_recipe_decides_the_precision_only_when_it_sets_it(monkeypatch, recipe_value, environment, expected,
                                                                 source):
    if environment is None:
        monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", environment)
    recipe = Recipe(mixed_precision=recipe_value)
    accelerator = build_accelerator(recipe)
    assert accelerator.mixed_precision == expected
    assert f"mixed precision: {expected} ({source}" in describe(accelerator, recipe)


@pytest.mark.slow
@pytest.mark.parametrize(("override", "expected", "source"), [([], "bf16", "from Accelerate"),
                                                              (["--mixed_precision=no"], "no", "from the recipe")])
def test_accelerate_launch_mixed_precision_is_honoured_unless_the_recipe_sets_it(tiny_root, tmp_path, override,
                                                                                  expected, source):
    # 16 frames: with 8, PyTorch's CPU bf16 conv3d backward returns NaN (see test_training's bf16 test)
    values = {**TINY, "max_epochs": 1, "clip_len": 16, "frame_interval": 1, "deterministic": False,
              "data_root": tiny_root, "work_dir": tmp_path / "run"}
    command = ["accelerate", "launch", "--num_processes=1", "--num_machines=1", "--dynamo_backend=no",
               "--mixed_precision=bf16", str(REPO / "train.py"), *(f"--{k}={v}" for k, v in values.items()), *override]
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_MIXED_PRECISION"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"mixed precision: {expected} ({source}" in result.stderr
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["mixed_precision"] == expected
