"""commands/cli.py: ``accel-slowfast`` and its subcommands, ``python -m accel_slowfast``, the root scripts."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY, one_line_error

from accel_slowfast.commands.cli import COMMANDS, command_main, main

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _python(*args: str, cwd: Path = REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**ENV, **env})


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert all(f"\n  {name} " in out for name in COMMANDS) and "accelerate launch" in out


@pytest.mark.parametrize("argv, message", [([], "usage: accel-slowfast"), (["trian"], "did you mean 'train'?")])
def test_no_or_a_misspelt_subcommand_exits_2(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_each_command_is_the_main_of_its_own_module():
    for name in COMMANDS:
        assert command_main(name).__module__ == f"accel_slowfast.commands.{name}", name


@pytest.mark.parametrize("name", ["train", "test", "models"])
def test_a_commands_help_imports_no_torch(name):
    code = (f"import sys\nfrom accel_slowfast.commands.cli import main\ntry:\n    main([{name!r}, '--help'])\n"
            "finally:\n    assert 'torch' not in sys.modules, 'torch'")
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"usage: accel-slowfast {name}" in result.stdout


@pytest.mark.slow
def test_importing_the_package_or_reading_a_recipe_imports_no_torch():
    code = ("import sys; from accel_slowfast.recipe.io import load_recipe; load_recipe(['--lr=0.1']); "
            "from accel_slowfast.commands import cli; assert 'torch' not in sys.modules, 'torch'")
    assert _python("-c", code).returncode == 0
    code = ("from accel_slowfast import Recipe, Runner, build_model, load_recipe, train; import accel_slowfast; "
            "assert train.__module__ == 'accel_slowfast.engine.training' and Runner.__name__ == 'Runner'; "
            "assert callable(build_model) and load_recipe([]) == Recipe()")
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_train_help_is_grouped_and_quick():
    start = time.perf_counter()
    result = _python("train.py", "--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 3, f"train.py --help took {elapsed:.1f} s"
    sections = [line[:-1] for line in result.stdout.splitlines() if line and not line[0].isspace() and
                line.endswith(":")]
    assert sections[-9:] == ["runtime", "model", "data", "augmentation", "evaluation and test", "optimization",
                             "schedule", "checkpoints and resume", "logging"]
    optimization = result.stdout.split("optimization:")[1].split("schedule:")[0]
    assert "--lr FLOAT" in optimization and "--model " not in optimization
    schedule = result.stdout.split("schedule:")[1].split("checkpoints and resume:")[0]
    assert "--warmup_ratio FLOAT" in schedule and "--lr " not in schedule


@pytest.mark.parametrize("args, message", [
    (["--lrr=0.1"], "error: --lrr=0.1: unknown recipe key 'lrr'; did you mean 'lr'?"),
    (["--lr=abc"], "error: recipe key 'lr' must be float, got 'abc'"),
    (["--batch_size"], "error: argument --batch_size: expected one argument"),
    (["--clip_len=18"], "error: recipe key 'clip_len' (18) must be a multiple of slowfast_tiny's alpha (4)"),
    (["--num_repeats=2", "--multigrid_short_cycle"], "error: recipe key 'num_repeats' does not combine with multigrid"),
])
def test_bad_command_line_is_one_line_before_any_import_of_torch(args, message):
    result = _python("train.py", *args)
    assert one_line_error(result).startswith(message)
    assert result.stderr.count("\n") == 1  # no usage dump


def test_test_command_needs_a_checkpoint():
    result = _python("test.py", "--num_clips=2")
    assert "needs --checkpoint=PATH" in one_line_error(result)
    assert "usage: test.py --checkpoint=PATH [--out_dir=DIR] [RECIPE.yaml]" in _python("test.py", "--help").stdout


@pytest.mark.parametrize("args, usage", [
    (["export", "--help"], "usage: accel-slowfast export"),
    (["models", "slowfast_tiny", "--crop_size=32"], "GFLOPs/view"),
])
@pytest.mark.slow
def test_python_m_accel_slowfast_runs_a_command_without_a_runpy_warning(args, usage):
    result = _python("-m", "accel_slowfast", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert usage in result.stdout and "RuntimeWarning" not in result.stderr


@pytest.mark.slow
def test_accelerate_launch_runs_the_training_and_test_command_modules(tiny_root, tmp_path):
    """``accelerate launch -m accel_slowfast train``/``test`` from outside the checkout."""
    recipe = [f"--data_root={tiny_root}", f"--work_dir={tmp_path / 'run'}", "--max_epochs=1",
              *(f"--{key}={value}" for key, value in TINY.items() if key != "max_epochs")]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes=1"]
    result = subprocess.run([*launch, "-m", "accel_slowfast", "train", *recipe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_1"
    assert (checkpoint / "meta.json").exists()
    result = subprocess.run([*launch, "-m", "accel_slowfast", "test", *recipe, "--num_clips=1",
                             "--num_crops=1", f"--checkpoint={checkpoint}"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "test_metrics.json").exists()
