"""The work_dir's names (names.py): checkpoint names, staging names per run, a predecessor set aside
under its time, where a checkpoint's test reports and run files are."""

import os

import pytest

from accel_slowfast.checkpointing.names import (
    best_checkpoint_name,
    checkpoint_name,
    find_run_file,
    reports_dir,
    set_aside,
    staging_path,
)


def test_checkpoint_names():
    assert checkpoint_name(epoch=3) == "epoch_3" and checkpoint_name(iteration=40) == "iter_40"
    assert best_checkpoint_name("top1_acc", 2) == "best_top1_acc_epoch_2.pth"


def test_a_save_is_staged_beside_its_final_name_under_the_runs_id(tmp_path):
    staging = staging_path(tmp_path / "checkpoints" / "epoch_1", "20260101-000000-abcdef")
    assert staging == tmp_path / "checkpoints" / ".tmp_20260101-000000-abcdef_epoch_1"


def test_a_predecessor_is_set_aside_under_its_time_never_over_another(tmp_path):
    stamp = 1767225600  # 2026-01-01 00:00 UTC
    moved = []
    for _ in range(2):
        (tmp_path / "metrics.jsonl").write_text("{}\n")
        os.utime(tmp_path / "metrics.jsonl", (stamp, stamp))
        moved.append(set_aside(tmp_path / "metrics.jsonl"))
    assert moved[0].name.startswith("metrics_2026") and moved[0].suffix == ".jsonl"
    assert moved[1].name == moved[0].stem + "_1.jsonl" and not (tmp_path / "metrics.jsonl").exists()


def test_a_checkpoints_reports_and_run_files_are_found_from_where_it_lies(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_2"
    checkpoint.mkdir(parents=True)
    (tmp_path / "run" / "recipe.yaml").write_text("lr: 0.1\n")
    assert reports_dir(checkpoint) == tmp_path / "run"
    assert reports_dir(tmp_path / "copied" / "epoch_2") == tmp_path / "copied"
    assert find_run_file(checkpoint, "recipe.yaml") == tmp_path / "run" / "recipe.yaml"
    (checkpoint / "recipe.yaml").write_text("lr: 0.2\n")  # the checkpoint's own copy comes first
    assert find_run_file(checkpoint, "recipe.yaml") == checkpoint / "recipe.yaml"
    with pytest.raises(FileNotFoundError, match="no classes.json at or above"):
        find_run_file(checkpoint, "classes.json")
