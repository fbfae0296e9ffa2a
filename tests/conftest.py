"""Shared fixtures: a tiny synthetic UCF101-layout dataset (real .avi files) and a tiny recipe."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Probe caches and generated datasets go to a throw-away folder, never the user's ~/.cache.
os.environ.setdefault("ACCEL_SLOWFAST_CACHE", tempfile.mkdtemp(prefix="accel_slowfast_test_cache_"))

from accel_slowfast.data.synthetic import ensure_synthetic
from accel_slowfast.data.torchcodec_decoding import torchcodec_missing
from accel_slowfast.engine.training import train
from accel_slowfast.notebook import TINY as NOTEBOOK_TINY
from accel_slowfast.notebook import TINY_SPEC
from accel_slowfast.recipe.recipe import Recipe


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return ensure_synthetic(TINY_SPEC, cache_dir=tmp_path_factory.mktemp("synthetic"))


TORCHCODEC_MISSING = (reason := torchcodec_missing()) and (f"torchcodec cannot decode here ({reason}); "
                                                           "pip install -e '.[torchcodec]' and apt-get install ffmpeg")
needs_torchcodec = pytest.mark.skipif(bool(TORCHCODEC_MISSING), reason=TORCHCODEC_MISSING)


def decoder_params(names) -> list:
    """``names`` for ``parametrize``, torchcodec's skipped (with the reason) where it cannot run."""
    return [pytest.param(name, marks=needs_torchcodec) if name == "torchcodec" else name for name in sorted(names)]


REPO = Path(__file__).parents[1]
# The notebooks' tiny run (slowfast_tiny, 5 iterations an epoch, a few seconds), deterministic and
# keeping a checkpoint of every epoch.
TINY = dict(NOTEBOOK_TINY, checkpoint_interval=1, max_keep_ckpts=0, deterministic=True)


def tiny_recipe(root: Path, work_dir: Path, **overrides) -> Recipe:
    """A recipe that trains slowfast_tiny on the tiny dataset in a few seconds."""
    return Recipe(**{"work_dir": str(work_dir), "data_root": str(root), **TINY, **overrides})


@pytest.fixture(scope="session")
def trained(tiny_root, tmp_path_factory) -> tuple[Recipe, Path]:
    """A tiny recipe (2 clips x 3 crops of 32 px to test) trained for one epoch, and its epoch_1
    checkpoint: what the test command, export and predict start from (trained once per session)."""
    work_dir = tmp_path_factory.mktemp("trained") / "run"
    recipe = tiny_recipe(tiny_root, work_dir, max_epochs=1, num_clips=2, num_crops=3, test_crop_size=32)
    train(recipe)
    return recipe, work_dir / "checkpoints" / "epoch_1"


def run_command(script: str, root: Path, work_dir: Path, *args: str, **overrides) -> subprocess.CompletedProcess:
    """``python <script> [args] --key=value ...`` (``train.py``/``test.py``) on the tiny recipe, as a
    user runs it; ``overrides`` replace the tiny recipe's values."""
    values = {"work_dir": work_dir, "data_root": root, **TINY, **overrides}
    command = [sys.executable, str(REPO / script), *args, *(f"--{key}={value}" for key, value in values.items())]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single ``error: ...`` line a failed command printed (asserting there is no traceback)."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


@pytest.fixture(autouse=True)
def propagating_logger():
    """train() makes the package logger print by itself (propagate=False); let caplog see it again."""
    import logging

    logging.getLogger("accel_slowfast").propagate = True


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps process-wide singletons; each test builds its own Accelerator."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
