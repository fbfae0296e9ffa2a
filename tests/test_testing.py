"""test.py (multi-view evaluation and its reports), export/load_model and predict."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import one_line_error, tiny_recipe

from accel_slowfast import export
from accel_slowfast.errors import CheckpointError
from accel_slowfast.export import export_model, load_model, push_to_hub
from accel_slowfast.models import build_model
from accel_slowfast.predict import predict
from accel_slowfast.testing import run_test
from accel_slowfast.training import train

REPO = Path(__file__).parents[1]
VIEWS = dict(num_clips=2, num_crops=3, test_crop_size=32)


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("trained") / "run"
    recipe = tiny_recipe(tiny_root, work_dir, max_epochs=1, **VIEWS)
    train(recipe)
    return recipe, work_dir / "checkpoints" / "epoch_1"


def test_multi_view_test_writes_metrics_and_reports(trained, tmp_path):
    recipe, checkpoint = trained
    recipe = type(recipe)(**{**recipe.to_dict(), "work_dir": str(tmp_path)})
    metrics = run_test(recipe, checkpoint)
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
        run_test(type(recipe)(**{**recipe.to_dict(), "work_dir": str(tmp_path)}), tmp_path / "other.pth")


def test_export_load_and_predict(trained, tmp_path, tiny_root):
    _, checkpoint = trained
    out = export_model(checkpoint, tmp_path / "export")
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    model, config = load_model(out)
    assert config["classes"][0] == "MoveDown" and not model.training
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    top = predict(model, config, video)
    assert [name for name, _ in top] and len(top) == 5 and sorted(top, key=lambda t: -t[1]) == top
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    from_checkpoint = predict(*load_model(checkpoint), video)
    assert [n for n, _ in from_checkpoint] == [n for n, _ in top]
    result = subprocess.run([sys.executable, "-m", "accel_slowfast.predict", str(video), f"--checkpoint={out}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5 and top[0][0] in result.stdout.splitlines()[0]


def test_test_py_with_two_processes_equals_one(tiny_root, tmp_path):
    torch.manual_seed(0)
    torch.save(build_model("slowfast_tiny", num_classes=5).state_dict(), tmp_path / "weights.pth")
    args = [f"--data_root={tiny_root}", "--clip_len=8", "--short_side=32", "--crop_size=32", "--test_crop_size=32",
            "--num_clips=2", "--batch_size=4", "--num_workers=0", f"--checkpoint={tmp_path / 'weights.pth'}"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    results = []
    for processes in (1, 2):
        work_dir = tmp_path / f"p{processes}"
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        run = subprocess.run([*launcher, str(REPO / "test.py"), *args, f"--work_dir={work_dir}"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        results.append(json.loads((work_dir / "test_metrics.json").read_text()))
    assert results[0] == results[1] and results[0]["num_videos"] == 10 and results[0]["num_views"] == 60


@pytest.mark.slow
def test_the_summary_names_the_best_checkpoint_and_its_test_command_evaluates_that_run(tiny_root, tmp_path):
    trained = subprocess.run([sys.executable, str(REPO / "train.py"), f"--data_root={tiny_root}",
                              f"--work_dir={tmp_path / 'run'}", "--clip_len=8", "--short_side=32", "--crop_size=32",
                              "--test_crop_size=32", "--batch_size=4", "--num_workers=0", "--max_epochs=2",
                              "--num_clips=1", "--deterministic"], capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = trained.stderr[trained.stderr.index("Finished: 2 epochs, 10 iterations"):]
    assert "best top1_acc: " in summary and "last evaluation (epoch 2): top1_acc " in summary
    assert f"work_dir: {tmp_path / 'run'}" in summary
    command = summary.split("next, the multi-view test: ")[1].splitlines()[0]
    assert command.startswith("accel-slowfast test --checkpoint=") and "best_top1_acc_epoch_" in command

    # run it from elsewhere with one key changed: the run's recipe (data, crops, clip length) is the base
    checkpoint = command.split("--checkpoint=")[1]
    tested = subprocess.run([sys.executable, str(REPO / "test.py"), f"--checkpoint={checkpoint}", "--num_clips=2"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert metrics["num_videos"] == 10 and metrics["num_views"] == 10 * 2 * 3  # --num_clips=2 won over 1
    assert "test: 100%" in tested.stderr and "60/60" in tested.stderr  # the progress bar over views
    tail = tested.stderr.rstrip().splitlines()[-6:]
    assert f"top1_acc {metrics['top1_acc']:.4f}" in "\n".join(tail) and "Wrote:" in "\n".join(tail)
    written = [line.strip() for line in tail[tail.index(next(t for t in tail if t.endswith("Wrote:"))) + 1:]]
    assert len(written) == 4 and all(Path(path).is_file() for path in written)


def test_export_files_are_readable_by_everyone(trained, tmp_path):
    previous = os.umask(0o022)  # the usual umask: new files 0644
    try:
        out = export_model(trained[1], tmp_path / "export")
    finally:
        os.umask(previous)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == dict.fromkeys(
        ["model.safetensors", "config.json", "README.md"], "0o644")


def test_model_card_describes_the_model_its_training_and_its_results(trained, tmp_path):
    recipe, checkpoint = trained
    out = export_model(checkpoint, tmp_path / "export", repo_id="you/slowfast-tiny")
    _, front, body = (out / "README.md").read_text().split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "accel_slowfast" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "video-classification" and {"slowfast", "synthetic"} <= set(meta["tags"])
    assert "# slowfast_tiny on synthetic" in body and "`MoveDown`, `MoveSideways`" in body
    work_dir = Path(recipe.work_dir)
    val = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines() if '"val"' in line][-1]
    row = next(line for line in body.splitlines() if line.startswith("| validation after epoch 1"))
    assert f"{val['top1_acc']:.4f} | {val['top5_acc']:.4f} | {val['mean_class_accuracy']:.4f}" in row
    assert f"| lr | {recipe.lr} |" in body and "| batch_size | 4 |" in body and str(work_dir) not in body
    assert 'load_model("you/slowfast-tiny")' in body and "--checkpoint=you/slowfast-tiny" in body


def test_push_to_hub_creates_the_repo_and_uploads_the_folder(trained, tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: calls.append(("create", repo_id, kwargs)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kwargs: calls.append(("upload", kwargs)) or
                        SimpleNamespace(commit_url="https://huggingface.co/you/x/commit/1"))
    out = tmp_path / "export"
    export.main([str(trained[1]), str(out), "--push_to_hub=you/x", "--private"])
    assert calls[0] == ("create", "you/x", {"private": True, "exist_ok": True})
    assert calls[1][1]["repo_id"] == "you/x" and calls[1][1]["folder_path"] == str(out)
    assert capsys.readouterr().out.splitlines()[-1] == "pushed to https://huggingface.co/you/x/commit/1"
    assert push_to_hub(out, "you/y") == "https://huggingface.co/you/x/commit/1"
    assert calls[2] == ("create", "you/y", {"private": False, "exist_ok": True})


def test_load_model_takes_a_hub_id(trained, tmp_path, monkeypatch):
    import huggingface_hub

    out = export_model(trained[1], tmp_path / "export")
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kwargs: asked.append(repo_id) or out)
    monkeypatch.chdir(tmp_path)  # "you/slowfast-tiny" is no local folder here
    model, config = load_model("you/slowfast-tiny")
    assert asked == ["you/slowfast-tiny"] and config == json.loads((out / "config.json").read_text())
    assert not model.training


def test_an_unknown_hub_id_offline_is_one_line(tiny_root, tmp_path):
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    result = subprocess.run([sys.executable, "-m", "accel_slowfast.predict", str(video), "--checkpoint=nobody/nothing"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert "nobody/nothing is not a local path, and the Hugging Face Hub did not give it" in one_line_error(result)
