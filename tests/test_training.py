"""End-to-end: train.py's lifecycle on the tiny synthetic set, its outputs, resume and load_from."""

import dataclasses
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_recipe
from safetensors.torch import load_file

from accel_slowfast.checkpointing.resume import ResumePlan
from accel_slowfast.engine.schedule import build_lr_schedule
from accel_slowfast.engine.training import build_optimizer, build_runner, describe_repeats, train
from accel_slowfast.recipe.recipe import Recipe, RecipeError
from accel_slowfast.schedule_formulas import regular_lr, warmup_factor

REPO = Path(__file__).parents[1]
TIMING = ("time", "data_time")


def _records(work_dir):
    lines = (Path(work_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _weights(work_dir, epoch):
    return load_file(str(Path(work_dir) / "checkpoints" / f"epoch_{epoch}" / "model.safetensors"))


def test_train_writes_metrics_recipe_and_checkpoints(tiny_root, tmp_path):
    recipe = tiny_recipe(tiny_root, tmp_path / "run", warmup_epochs=1)
    runner = train(recipe)
    assert runner.epoch == 2 and runner.iter == 10  # 20 training videos / batch 4 = 5 iterations per epoch

    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    train_records = [r for r in records if r["mode"] == "train"]
    val_records = [r for r in records if r["mode"] == "val"]
    # every 2 iterations of an epoch, plus the epoch's remainder
    assert [(r["epoch"], r["iter"]) for r in train_records] == [(1, 2), (1, 4), (1, 5), (2, 7), (2, 9), (2, 10)]
    for r in train_records:
        assert {"lr", "loss", "time", "data_time", "grad_norm"} <= set(r) and r["loss"] > 0
        # the LR the record's iteration used: cosine by epoch x linear warmup over epoch 1
        cur = r["iter"] - 1
        keys = build_lr_schedule(recipe.schedule_args, recipe.lr).policy_keys
        lr = regular_lr("cosine", recipe.lr, cur // 5, 2, **keys)
        expected = lr * warmup_factor("linear", cur, 5, 0.1)
        assert r["lr"] == pytest.approx(expected)
    assert [(r["epoch"], r["iter"]) for r in val_records] == [(1, 5), (2, 10)]
    for r in val_records:
        assert 0 <= r["top1_acc"] <= r["top5_acc"] <= 1 and 0 <= r["mean_class_accuracy"] <= 1

    saved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert Recipe(**saved) == recipe  # a precision the recipe left open stays open (the log says what was used)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir() if p.is_dir()} == {"epoch_1", "epoch_2"}
    assert len(list(checkpoints.glob("best_top1_acc_epoch_*.pth"))) == 1
    assert json.loads((checkpoints / "epoch_2" / "meta.json").read_text())["epoch"] == 2

    # the start-up log lists what differs from the defaults; recipe.yaml has every key
    (log,) = (tmp_path / "run").glob("train_*.log")
    start_up = log.read_text().split("Recipe, where it differs from the defaults")[1].split(" - Model ")[0]
    assert "clip_len: 8" in start_up and "warmup_epochs" not in start_up and "optimizer" not in start_up


def test_bf16_mixed_precision_and_a_rerun_in_the_same_work_dir(tiny_root, tmp_path):
    # 16 frames: with 8 (2 slow frames) PyTorch's CPU bf16 conv3d backward returns NaN in res4 (torch 2.14)
    recipe = tiny_recipe(tiny_root, tmp_path / "run", max_epochs=1, mixed_precision="bf16", deterministic=False,
                         clip_len=16, frame_interval=1)
    train(recipe)
    first = _records(recipe.work_dir)
    assert all(r["loss"] == r["loss"] for r in first if r["mode"] == "train")  # finite, not NaN
    with pytest.raises(RecipeError, match="holds the checkpoints of an earlier run"):
        train(recipe)
    train(dataclasses.replace(recipe, overwrite=True))  # a fresh run sets the old records and checkpoints aside
    assert _records(recipe.work_dir) == first
    assert len(list((tmp_path / "run").glob("metrics_*.jsonl"))) == 1
    assert len(list((tmp_path / "run").glob("checkpoints_*/epoch_1"))) == 1


def test_max_keep_ckpts_keeps_the_newest(tiny_root, tmp_path):
    train(tiny_recipe(tiny_root, tmp_path / "run", max_epochs=3, max_keep_ckpts=2, eval_interval=3))
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("epoch_*")) == ["epoch_2", "epoch_3"]


def _cli(*args, cwd=REPO, **env):
    return subprocess.run([sys.executable, "train.py", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_cli_help_lists_every_key_and_bad_input_exits_2():
    result = _cli("--help")
    assert result.returncode == 0
    for key in ("work_dir", "lr_policy", "warmup_ratio", "gradient_accumulation_steps", "report_to"):
        assert f"--{key}" in result.stdout
    result = _cli("--max_epoch=3")
    assert result.returncode == 2 and "--max_epoch=3" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_readme_first_command_learns_motion_without_launcher_warnings(tmp_path):
    """The README's first command, verbatim after its `pip install` (about 2 minutes)."""
    first = (REPO / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    command = first.split("&&", 1)[1].split("#", 1)[0].strip()
    assert command.startswith("accelerate launch") and "train.py" in command
    for name in ("train.py", "recipes"):  # the repository's files, seen from a folder of the test's own
        (tmp_path / name).symlink_to(REPO / name)
    result = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "ACCEL_SLOWFAST_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "were not passed to `accelerate launch`" not in result.stderr
    records = _records(tmp_path / "work_dirs" / "synthetic_slowfast_tiny")
    assert [r for r in records if r["mode"] == "val"][-1]["top1_acc"] >= 0.9


def test_val_workflow_logs_validation_loss_as_mmcv(tiny_root, tmp_path):
    recipe = tiny_recipe(tiny_root, tmp_path / "run", max_epochs=2, workflow=["train:1", "val:1"], eval_interval=2)
    train(recipe)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if r["mode"] == "val" and "loss" in r]
    assert [(r["epoch"], r["iter"]) for r in losses] == [(1, 5), (2, 10)] and all(r["loss"] > 0 for r in losses)
    assert "lr" not in losses[0] and "top1_acc" not in losses[0]


def test_workflow_key_is_validated():
    with pytest.raises(ValueError, match="workflow"):
        Recipe(workflow=["val:1"])
    with pytest.raises(ValueError, match="mode:epochs"):
        Recipe(workflow=["train"])


# The first ten losses of the tiny recipe (CPU, deterministic; measured with torch 2.14.1). A change to the
# loop, the data order, the augmentation, the model or the optimizer shows here first. The kernels torch
# picks for the CPU's vector unit round differently, and ten SGD steps grow that into 0.1: one list per unit.
GOLDEN_LOSSES_BY_CPU = {
    "AVX2": [1.638646, 1.55718, 1.682235, 1.62523, 2.083085, 1.487874, 1.620703, 1.746018, 1.511242, 1.54451],
    "AVX512": [1.638646, 1.557183, 1.682145, 1.628607, 2.089264, 1.445812, 1.661738, 1.7353, 1.502077, 1.698914],
}
GOLDEN_LOSSES = GOLDEN_LOSSES_BY_CPU.get(torch.backends.cpu.get_cpu_capability(), GOLDEN_LOSSES_BY_CPU["AVX512"])


def test_the_tiny_recipe_reproduces_its_golden_losses(tiny_root, tmp_path):
    train(tiny_recipe(tiny_root, tmp_path / "run", log_interval=1))
    losses = [r["loss"] for r in _records(tmp_path / "run") if r["mode"] == "train"]
    assert losses == pytest.approx(GOLDEN_LOSSES, abs=1e-4)


MULTIGRID = dict(multigrid_long_cycle=True, multigrid_short_cycle=True, clip_len=16, batch_size=1, max_epochs=3,
                 lr_policy="step", lr_steps=[2], precise_bn_batches=2, log_interval=1, checkpoint_interval=3)


@pytest.mark.slow
def test_a_multigrid_run_stopped_mid_stage_resumes_bitwise_equal_to_an_uninterrupted_one(tiny_root, tmp_path,
                                                                                           monkeypatch):
    import signal

    from accelerate.state import AcceleratorState, GradientState

    from accel_slowfast.engine import training
    from accel_slowfast.interrupts import InterruptedRun

    straight = train(tiny_recipe(tiny_root, tmp_path / "straight", **MULTIGRID))
    records = [r for r in _records(tmp_path / "straight") if r["mode"] == "train"]
    per_epoch = [sum(r["epoch"] == epoch for r in records) for epoch in (1, 2, 3)]
    assert straight.iter == sum(per_epoch) == straight.max_iters and len(set(per_epoch)) > 1  # shapes change
    assert records[0]["lr"] == pytest.approx(8 * 4.0e-3 * 0.1)  # batch factor 8, linear warmup's first 0.1
    assert records[-1]["lr"] == pytest.approx(4.0e-3 * 0.1)  # the fine-tuning's second half: one decay lower
    expected = {k: v.clone() for k, v in straight.model.state_dict().items()}
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()

    stop_at, calls, step = per_epoch[0] + 2, [0], training.classification_step  # inside epoch 2

    def step_with_signal(model, batch, train_mode):
        calls[0] += train_mode
        if calls[0] == stop_at and train_mode:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(model, batch, train_mode)

    monkeypatch.setattr(training, "classification_step", step_with_signal)
    with pytest.raises(InterruptedRun):
        train(tiny_recipe(tiny_root, tmp_path / "stopped", **MULTIGRID))
    monkeypatch.undo()
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    resumed = train(tiny_recipe(tiny_root, tmp_path / "stopped", resume_from="auto", **MULTIGRID))
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert _records(tmp_path / "stopped") == _records(tmp_path / "straight")


@pytest.mark.parametrize(("keys", "expected", "lr"), [
    (dict(sample_once=True), "4 videos x 2 clips (one position, 2 augmentations, one decode) = batch_size 8 clips "
                             "per process; an epoch takes 2 clips of every video; lr is not scaled (base_batch_size 0)",
     0.004),
    (dict(base_batch_size=64, gradient_accumulation_steps=2),
     "4 videos x 2 clips (2 positions and augmentations, one decode) = batch_size 8 clips per process; an epoch takes "
     "2 clips of every video; base_batch_size counts clips: lr 0.004 x 2 processes x 8 clips x 2 accumulation / 64 = "
     "0.002", 0.002),
])
def test_the_repeats_line_says_what_a_batch_holds_and_how_the_lr_rule_counts_it(keys, expected, lr):
    recipe = Recipe(num_repeats=2, batch_size=8, lr=0.004, **keys)
    assert describe_repeats(recipe, 2) == f"Repeated augmentation: a batch holds {expected}"
    optimizer = build_optimizer(torch.nn.Linear(1, 1), recipe.optimization_args, num_processes=2)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)


def test_a_resume_keeps_the_lr_its_checkpoints_processes_scaled(tmp_path):
    """base_batch_size scales lr by the processes; a resume on another process count continues the
    schedule it resumes (as mmcv's optimizer keeps its first LR), not one scaled anew."""
    from accelerate import Accelerator

    recipe = Recipe(lr=0.1, batch_size=4, base_batch_size=4, work_dir=str(tmp_path), momentum_policy="none")
    model = torch.nn.Linear(2, 2)
    optimizer, accelerator = torch.optim.SGD(model.parameters(), lr=0.1), Accelerator(cpu=True)
    fresh = build_runner(recipe, model, optimizer, accelerator, logging.getLogger("test"))
    plan = ResumePlan(tmp_path / "epoch_1", {"num_processes": 4})
    resumed = build_runner(recipe, model, optimizer, accelerator, logging.getLogger("test"), plan=plan)
    assert fresh.lr_schedule.lr == pytest.approx(0.1) and resumed.lr_schedule.lr == pytest.approx(0.4)
