"""engine/testing.py: multi-view evaluation of a checkpoint and the files it writes."""

import csv
import json

import pytest
import torch

from accel_slowfast.engine.testing import run_test
from accel_slowfast.errors import CheckpointError
from accel_slowfast.models.builders import build_model


def test_multi_view_test_writes_metrics_and_reports(trained, tmp_path):
    recipe, checkpoint = trained
    metrics = run_test(recipe, checkpoint, tmp_path)
    assert metrics["num_videos"] == 10 and metrics["num_failed"] == 0 and metrics["num_views"] == 60
    assert json.loads((tmp_path / "test_metrics.json").read_text()) == metrics
    with open(tmp_path / "test_predictions.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 10 and all(len(r["top5"].split()) == 5 for r in rows)
    accuracy = sum(int(r["correct"]) for r in rows) / 10
    assert accuracy == pytest.approx(metrics["top1_acc"])
    with open(tmp_path / "test_per_class.csv") as file:
        per_class = list(csv.DictReader(file))
    assert [r["class"] for r in per_class] == ["MoveDown", "MoveSideways", "MoveUp", "ZoomIn", "ZoomOut"]
    assert sum(int(r["videos"]) for r in per_class) == 10
    assert (tmp_path / "test_confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_refuses_a_checkpoint_of_another_model(trained, tmp_path):
    recipe, _ = trained
    torch.save(build_model("slowfast_tiny", num_classes=7).state_dict(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        run_test(recipe, tmp_path / "other.pth")
