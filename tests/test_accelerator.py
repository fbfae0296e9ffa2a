"""The Accelerator every command builds: the recipe's precision wins, else Accelerate's (launcher, config, env)."""

import json
import os
import subprocess

import pytest
import yaml
from conftest import REPO, TINY, run_command

from accel_slowfast.engine.accelerator import build_accelerator, describe
from accel_slowfast.recipe.recipe import Recipe


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
    accelerator = build_accelerator(recipe.runtime_args, recipe.logging_args)
    assert accelerator.mixed_precision == expected
    assert f"mixed precision: {expected} ({source}" in describe(accelerator, recipe.runtime_args)


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
    # recipe.yaml keeps what the recipe said: left open, a later command's launcher decides again
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["mixed_precision"] == override_value(override)


def override_value(override: list[str]) -> str:
    return override[0].split("=")[1] if override else ""


@pytest.mark.slow
def test_a_run_without_a_precision_flag_leaves_the_precision_to_the_test_commands_launcher(tiny_root, tmp_path):
    # trained without any precision flag (fp32), then tested as the user did: accelerate launch --mixed_precision bf16
    trained = run_command("train.py", tiny_root, tmp_path / "run", max_epochs=1)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["mixed_precision"] == ""
    command = ["accelerate", "launch", "--num_processes=1", "--num_machines=1", "--dynamo_backend=no",
               "--mixed_precision=bf16", str(REPO / "test.py"), f"--checkpoint={tmp_path / 'run/checkpoints/epoch_1'}",
               "--num_clips=1", "--num_crops=1"]
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_MIXED_PRECISION"}
    tested = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert "mixed precision: bf16 (from Accelerate" in tested.stderr
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert metrics["mixed_precision"] == "bf16" and metrics["num_processes"] == 1


@pytest.mark.slow
def test_accelerate_launch_with_cpu_and_two_processes_runs_two(tiny_root, tmp_path):
    # Accelerate's simple launcher starts one process for --cpu --num_processes 2 (no MPI): it trained alone
    values = {**TINY, "max_epochs": 1, "data_root": tiny_root, "work_dir": tmp_path / "run"}
    command = ["accelerate", "launch", "--cpu", "--num_processes", "2", str(REPO / "train.py"),
               *(f"--{k}={v}" for k, v in values.items())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "starting them with: accel-slowfast launch --standalone --nproc_per_node=2" in result.stderr
    assert result.stderr.count("Run: 2 process(es) on cpu") == 1, result.stderr[-3000:]


@pytest.mark.slow
def test_accel_slowfast_launch_runs_two_cpu_processes_without_any_environment_variable(tiny_root, tmp_path):
    values = {**TINY, "max_epochs": 1, "data_root": tiny_root, "work_dir": tmp_path / "run"}
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    command = ["accel-slowfast", "launch", "--standalone", "--nproc_per_node=2", str(REPO / "train.py"),
               *(f"--{k}={v}" for k, v in values.items())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("Run: 2 process(es) on cpu") == 1, result.stderr[-3000:]
