"""export.py: the export folder and its model card, push_to_hub, and load_model from a folder or a Hub id."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import one_line_error

from accel_slowfast.commands import export
from accel_slowfast.export.hub import export_model, load_model, push_to_hub

EXPORTED = ("model.safetensors", "config.json", "video_preprocessor_config.json", "hf_model.py", "README.md")


def test_export_writes_the_folder_load_model_reads(trained, tmp_path):
    _, checkpoint = trained
    out = export_model(checkpoint, tmp_path / "export")
    assert {p.name for p in out.iterdir()} == {*EXPORTED}
    model, config = load_model(out)
    assert config["classes"][0] == "MoveDown" and not model.training


def test_export_files_are_readable_by_everyone(trained, tmp_path):
    previous = os.umask(0o022)  # the usual umask: new files 0644
    try:
        out = export_model(trained[1], tmp_path / "export")
    finally:
        os.umask(previous)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == dict.fromkeys(EXPORTED, "0o644")


def test_model_card_describes_the_model_its_training_and_its_results(trained, tmp_path):
    recipe, checkpoint = trained
    out = export_model(checkpoint, tmp_path / "export", repo_id="you/slowfast-tiny")
    _, front, body = (out / "README.md").read_text().split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "transformers" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "video-classification"
    assert {"slowfast", "synthetic", "accel_slowfast", "custom_code"} <= set(meta["tags"])
    assert "# slowfast_tiny on synthetic" in body and "`MoveDown`, `MoveSideways`" in body
    work_dir = Path(recipe.work_dir)
    val = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines() if '"val"' in line][-1]
    row = next(line for line in body.splitlines() if line.startswith("| validation after epoch 1"))
    assert f"{val['top1_acc']:.4f} | {val['top5_acc']:.4f} | {val['mean_class_accuracy']:.4f}" in row
    assert f"| lr | {recipe.lr} |" in body and "| batch_size | 4 |" in body and str(work_dir) not in body
    assert 'load_model("you/slowfast-tiny")' in body and "--checkpoint=you/slowfast-tiny" in body
    assert 'pipeline("video-classification", model="you/slowfast-tiny", trust_remote_code=True)' in body


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
    assert asked == ["you/slowfast-tiny"] and config == json.loads((out / "config.json").read_text())["accel_slowfast"]
    assert not model.training


def test_export_into_a_folder_holding_files_is_refused_unless_overwrite(trained, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    (out / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as stop:
        export.main([str(trained[1]), str(out)])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line == (f"error: export: {out} is not empty (README.md, config.json); choose a new or empty folder, or "
                    "pass --overwrite to replace its config.json, model.safetensors, video_preprocessor_config.json, "
                    "hf_model.py and README.md")
    assert (out / "README.md").read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json"]

    (out / "keep.txt").write_text("kept")
    export.main([str(trained[1]), str(out), "--overwrite"])
    assert (out / "README.md").read_text() != "my notes" and (out / "keep.txt").read_text() == "kept"
    assert load_model(out)[1]["model"] == "slowfast_tiny"


def test_export_to_a_file_is_one_line(trained, tmp_path, capsys):
    target = tmp_path / "model.bin"
    target.write_bytes(b"x")
    with pytest.raises(SystemExit) as stop:
        export.main([str(trained[1]), str(target)])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: export: {target} is a file; give the folder to write the export into\n"
    assert target.read_bytes() == b"x"


def test_push_to_hub_without_a_network_fails_in_one_line(trained, tmp_path):
    # as a user without a network runs it: the Hub cannot be reached (a closed local port)
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_test", "HF_HUB_ETAG_TIMEOUT": "2"}
    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "export", str(trained[1]), str(tmp_path / "x"),
                             "--push_to_hub=you/x"], capture_output=True, text=True, timeout=300, env=env)
    line = one_line_error(result, code=1)
    assert line == "error: pushing to you/x failed: [Errno 111] Connection refused"
    assert (tmp_path / "x" / "model.safetensors").exists()  # the folder is written: push it again later
