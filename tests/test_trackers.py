"""Trackers: what an offline wandb run and TensorBoard receive from a tiny training run, read back from disk."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_recipe

from accel_slowfast.checkpointing.names import RUN_ID_FILE
from accel_slowfast.engine.trackers import gif_bytes
from accel_slowfast.engine.training import train
from accel_slowfast.recipe.io import save_recipe
from accel_slowfast.recipe.recipe import Recipe, RecipeError

BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of 7-byte-headed chunks

ROOT = Path(__file__).resolve().parent.parent  # train.py


def read_wandb_records(path: Path) -> list:
    """Every protobuf ``Record`` of an (offline) run's ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending, records = 7, b"", []
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def history(records) -> dict[int, dict[str, str]]:
    """``{step: {key: json value}}`` from the history records (nested keys joined by '/')."""
    steps: dict[int, dict[str, str]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(item.nested_key) or item.key: item.value_json for item in record.history.item}
            steps.setdefault(record.history.step.num, {}).update(items)
    return steps


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)


def test_report_to_names_and_validation():
    assert Recipe().trackers == []
    assert Recipe(report_to="all").trackers == ["wandb", "tensorboard"]
    assert Recipe(report_to="tensorboard").trackers == ["tensorboard"]
    with pytest.raises(RecipeError, match="'report_to'"):
        Recipe(report_to="mlflow")
    with pytest.raises(RecipeError, match="'wandb_project'"):
        Recipe(report_to="wandb", wandb_project="")
    with pytest.raises(RecipeError, match="'log_val_clips'"):
        Recipe(log_val_clips=-1)


def test_gif_has_every_frame_enlarged():
    from PIL import Image

    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 20, 3), dtype=np.uint8)  # identical ones merge
    with Image.open(gif_bytes(frames, min_side=64)) as gif:
        assert gif.n_frames == 5 and gif.size == (80, 64)


@pytest.mark.slow
def test_offline_wandb_and_tensorboard_receive_everything(tiny_root, tmp_path, offline_wandb):
    work_dir = tmp_path / "run"
    recipe = tiny_recipe(tiny_root, work_dir, report_to="all", wandb_tags=["tiny"], run_name="tiny-run",
                         log_val_clips=2)
    train(recipe)

    run_id = (work_dir / RUN_ID_FILE).read_text().strip()
    (run_dir,) = (work_dir / "wandb").glob(f"offline-run-*-{run_id}")
    records = read_wandb_records(run_dir / f"run-{run_id}.wandb")
    kinds = {r.WhichOneof("record_type") for r in records}
    assert {"run", "config", "history", "artifact"} <= kinds

    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == "tiny-run" and list(run.tags) == ["tiny"] and run.project == "accel_slowfast"
    config = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for u in r.config.update if u.key}
    assert config["lr"] == recipe.lr and config["work_dir"] == str(work_dir) and config["wandb_tags"] == ["tiny"]

    # train scalars at the global iteration (log_interval 2, 5 iterations per epoch); val ones at each epoch's end
    steps = history(records)
    train_steps = sorted(s for s, v in steps.items() if "train/loss" in v)
    assert train_steps == [2, 4, 5, 7, 9, 10]
    for s in train_steps:
        assert {"train/lr", "train/grad_norm", "train/time", "train/data_time"} <= set(steps[s])
    metrics = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    for val in (m for m in metrics if m["mode"] == "val"):
        logged = steps[val["iter"]]
        assert json.loads(logged["val/top1_acc"]) == pytest.approx(val["top1_acc"])
        assert json.loads(logged["val/epoch"]) == val["epoch"]  # epoch is a value, never the step
        for key in ("val/confusion_matrix_table/_type", "val/per_class/_type", "val/mistakes/_type"):
            assert json.loads(logged[key]) == "table-file"
        assert json.loads(logged["val/clips/count"]) == 2
    assert sorted(s for s, v in steps.items() if "val/top1_acc" in v) == [5, 10]
    # the summary: the best evaluation at the end, and wandb's summary of val/* keeps the maximum
    accuracies = [(m["top1_acc"], -m["epoch"]) for m in metrics if m["mode"] == "val"]
    best_acc, best_epoch = max(accuracies)
    assert json.loads(steps[10]["best/top1_acc"]) == pytest.approx(best_acc)
    assert json.loads(steps[10]["best/epoch"]) == -best_epoch
    summarized = {r.metric.name: r.metric.summary.max for r in records if r.WhichOneof("record_type") == "metric"}
    assert summarized["val/top1_acc"] and summarized["val/mean_class_accuracy"]

    # the media files behind them
    files = run_dir / "files" / "media"
    per_class = sorted((files / "table" / "val").glob("per_class_*.table.json"))
    assert len(per_class) == 2
    table = json.loads(per_class[-1].read_text())
    assert table["columns"] == ["class", "videos", "correct", "accuracy"] and len(table["data"]) == 5
    assert sum(row[1] for row in table["data"]) == 10  # the 10 validation videos
    assert len(list((files / "table" / "val").glob("confusion_matrix_table_*.table.json"))) == 2
    gifs = list((files / "videos" / "val").glob("clips_*.gif"))
    assert len(gifs) == 4  # 2 clips x 2 evaluations
    captions = json.loads(steps[10]["val/clips/captions"])
    assert all("true: " in c and "predicted: " in c for c in captions)

    # the best checkpoint as a model artifact, with what predict/export need beside it
    artifacts = [r.artifact for r in records
                 if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "model"]
    assert len(artifacts) == 1 and artifacts[0].name == f"model-{run_id}" and "best" in artifacts[0].aliases
    paths = {entry.path for entry in artifacts[0].manifest.contents}
    assert {"recipe.yaml", "classes.json"} <= paths and any(p.startswith("best_top1_acc_epoch_") for p in paths)

    # TensorBoard: one run in work_dir/tensorboard (no sub-run, no folder named after the project) with the
    # recipe as hparams, scalars at the same steps, confusion matrix image, per-class text
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert not (work_dir / "accel_slowfast").exists()
    assert [p.name.split(".")[0] for p in (work_dir / "tensorboard").iterdir()] == ["events"]
    events = EventAccumulator(str(work_dir / "tensorboard"), size_guidance={"images": 0}).Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content)
    assert hparams.session_start_info.hparams["lr"].number_value == recipe.lr
    assert hparams.session_start_info.hparams["wandb_tags"].string_value == "['tiny']"
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 5, 7, 9, 10]
    assert [e.step for e in events.Scalars("val/top1_acc")] == [5, 10]
    assert [e.step for e in events.Images("val/confusion_matrix")] == [5, 10]
    assert [(e.step, e.value) for e in events.Scalars("best/top1_acc")] == [(10, pytest.approx(best_acc))]
    assert (work_dir / "val_confusion.png").exists()


def _train_in_a_new_process(recipe: Recipe, recipe_file: Path) -> None:
    """``python train.py RECIPE``: a resumed run is a new process (wandb keeps per-process state)."""
    save_recipe(recipe, recipe_file)
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), str(recipe_file)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_resumed_run_continues_the_same_wandb_run(tiny_root, tmp_path, offline_wandb):
    work_dir = tmp_path / "run"
    options = dict(report_to="wandb", log_val_clips=0, log_checkpoint=False)
    _train_in_a_new_process(tiny_recipe(tiny_root, work_dir, max_epochs=1, **options), tmp_path / "first.yaml")
    first_id = (work_dir / RUN_ID_FILE).read_text().strip()
    _train_in_a_new_process(tiny_recipe(tiny_root, work_dir, max_epochs=2, resume_from="auto", **options),
                            tmp_path / "resumed.yaml")
    assert (work_dir / RUN_ID_FILE).read_text().strip() == first_id
    runs = sorted((work_dir / "wandb").glob(f"offline-run-*-{first_id}"))
    assert len(runs) >= 1
    records = [r for d in runs for r in read_wandb_records(d / f"run-{first_id}.wandb")]
    resumed = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert {r.run_id for r in resumed} == {first_id}
    steps = history(records)
    assert sorted(s for s, v in steps.items() if "val/top1_acc" in v) == [5, 10]  # epoch 2 continued the run

    # a fresh run in the same work_dir is a new wandb run
    train(tiny_recipe(tiny_root, work_dir, report_to="wandb", max_epochs=1, log_val_clips=0, log_checkpoint=False,
                      overwrite=True))
    assert (work_dir / RUN_ID_FILE).read_text().strip() != first_id
