"""Training from Hugging Face datasets (data/hf.py): every form ``--dataset=hf`` takes, built with
``datasets`` itself from the tiny synthetic videos, read back as the files are.

Forms: a ``videofolder`` tree (videos stored as paths), a ``save_to_disk`` folder and Parquet shards
(videos embedded as bytes), and a Hub id served offline from the cache ``load_dataset`` fills.
Rows of the byte forms follow the UCF101-layout split lists, so a run on them must equal a run on the files.
"""

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import tiny_recipe
from datasets.packaged_modules.parquet.parquet import Parquet
from datasets.table import embed_table_storage
from test_training import GOLDEN_LOSSES

from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.hf import HFVideoIndex, load_hf_dataset
from accel_slowfast.data.probe import probe_errors, probe_index
from accel_slowfast.data.readers import read_ucf101_split
from accel_slowfast.data.streams import probe_video
from accel_slowfast.engine.training import train
from accel_slowfast.errors import DataError, RecipeError
from accel_slowfast.recipe.recipe import Recipe

HUB_ID = "you/tiny_videos"


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """datasets' cache (load_dataset writes its Arrow copies there) in a throw-away folder."""
    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


def _splits(tiny_root: Path) -> dict:
    """The tiny set's split lists as they are read from files: {"train": index, "validation": index}."""
    lists = tiny_root / "ucfTrainTestlist"
    return {"train": read_ucf101_split(tiny_root, lists, 1, "train"),
            "validation": read_ucf101_split(tiny_root, lists, 1, "test")}


def _embedded(index) -> datasets.Dataset:
    """A split whose rows are ``index``'s videos in its order, with their bytes embedded."""
    features = datasets.Features(video=datasets.Video(), label=datasets.ClassLabel(names=index.classes))
    table = datasets.Dataset.from_dict({"video": list(index.paths), "label": index.labels.tolist()}, features=features)
    return table.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)  # as push_to_hub does


@pytest.fixture(scope="module")
def forms(tiny_root, tmp_path_factory, hf_cache) -> dict[str, str]:
    """``hf_dataset`` values of every form, each holding the splits "train" and "validation"."""
    base, splits = tmp_path_factory.mktemp("hf_forms"), _splits(tiny_root)
    for split, index in splits.items():  # videofolder: <split>/<class>/<video>
        for path in index.paths:
            target = base / "videofolder" / split / Path(path).parent.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    embedded = datasets.DatasetDict({split: _embedded(index) for split, index in splits.items()})
    embedded.save_to_disk(base / "save_to_disk")
    for split, table in embedded.items():  # the Hub's layout: data/<split>-<shard>-of-<shards>.parquet
        table.to_parquet(base / "parquet" / "data" / f"{split}-00000-of-00001.parquet")
    # What load_dataset(HUB_ID) leaves in the cache (HF_DATASETS_CACHE/<owner>___<name>/<config>/<version>/<hash>),
    # made from the Parquet shards without the network; offline, load_dataset(HUB_ID) reads it back.
    shards = {split: str(base / "parquet" / "data" / f"{split}-00000-of-00001.parquet") for split in splits}
    hub_folder = hf_cache / HUB_ID.replace("/", "___") / "default" / "0.0.0" / "0123abcd"
    Parquet(dataset_name=HUB_ID.split("/")[1], config_id="default", data_files=shards).download_and_prepare(
        output_dir=str(hub_folder))
    return {form: str(base / form) for form in ("videofolder", "save_to_disk", "parquet")} | {"hub": HUB_ID}


@pytest.mark.parametrize("form", ["videofolder", "save_to_disk", "parquet"])
def test_every_form_gives_the_files_videos_labels_and_frames(forms, tiny_root, form):
    splits, files = load_hf_dataset(forms[form]), _splits(tiny_root)
    for split, expected in files.items():
        index = HFVideoIndex(splits, forms[form], split)
        assert index.classes == expected.classes and len(index) == len(expected)
        assert index.labels.dtype == np.int32 and index.paths[2] == f"{forms[form]}:{split}[2]"
        by_name = {Path(path).name: (path, label) for path, label in zip(expected.paths, expected.labels, strict=True)}
        for row in (0, len(index) - 1):
            stored = index._table.column("video")[row]
            name = Path(stored["path"].as_py()).name  # videofolder: the file's path; embedded: its name
            assert stored["bytes"].is_valid == (form != "videofolder")  # paths, or bytes with no temporary file
            path, label = by_name[name]
            assert index.labels[row] == label
            with index.open(row, "fast") as video, open_video(path, "fast") as reference:
                assert video.num_frames == reference.num_frames
                assert video.get_frames(np.arange(0, 20, 3)).equal(reference.get_frames(np.arange(0, 20, 3)))
            assert index.probe(row) == probe_video(path)


def test_a_hub_id_is_read_offline_from_the_cache(forms, hf_cache, tmp_path):
    """``HF_HUB_OFFLINE=1``, as a user without network runs it: the data check reads the cached Hub dataset."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(hf_cache), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "data", "check", "--dataset=hf",
                             f"--hf_dataset={HUB_ID}", "--clip_len=8", "--frame_interval=2",
                             f"--work_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== train: 20 videos, 5 classes ==" in result.stdout and "== val: 10 videos, 5 classes ==" in result.stdout
    assert "0 missing, 0 unreadable, 0 shorter than a clip" in result.stdout


def test_training_from_parquet_bytes_equals_training_from_the_files(forms, tiny_root, tmp_path):
    """The Parquet rows are the split lists' videos in their order: the run's losses are the files' golden ones,
    with forked loader workers reading the memory-mapped rows."""
    recipe = tiny_recipe(tiny_root, tmp_path / "run", dataset="hf", hf_dataset=forms["parquet"], log_interval=1,
                         num_workers=2)
    runner = train(recipe)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in records if r["mode"] == "train"] == pytest.approx(GOLDEN_LOSSES, abs=1e-4)
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1, 2] and runner.epoch == 2
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == _splits(tiny_root)["train"].classes


def test_a_bad_row_is_reported_by_its_name(hf_cache, tiny_root, tmp_path):
    video = (tiny_root / "MoveUp" / "v_MoveUp_g02_c01.avi").read_bytes()
    rows = {"video": [{"bytes": video, "path": "a.avi"}, {"bytes": video[:300], "path": "cut.avi"}], "label": [0, 1]}
    features = datasets.Features(video=datasets.Video(), label=datasets.ClassLabel(names=["a", "b"]))
    datasets.DatasetDict(train=datasets.Dataset.from_dict(rows, features=features)).save_to_disk(tmp_path / "ds")
    index = HFVideoIndex(load_hf_dataset(str(tmp_path / "ds")), "ds", "train")
    table = probe_index(index, cache_dir=tmp_path / "cache")
    assert list(probe_errors(table)) == [1] and table["path"] == ["ds:train[0]", "ds:train[1]"]
    assert table["num_frames"][0] == 20


def test_the_index_keeps_no_python_object_per_row(hf_cache, tmp_path):
    """50k rows: the index retains its int32 labels (200 kB) and a few objects, not a string or dict per video."""
    rows = 50_000
    features = datasets.Features(video=datasets.Video(), label=datasets.Value("int64"))
    table = datasets.Dataset.from_dict({"video": [{"bytes": b"x", "path": None}] * rows, "label": [1] * rows},
                                       features=features)
    datasets.DatasetDict(train=table).save_to_disk(tmp_path / "big")
    splits = load_hf_dataset(str(tmp_path / "big"))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    index = HFVideoIndex(splits, "big", "train")
    retained = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert len(index) == rows and index.classes == ["0", "1"]
    assert retained < 4 * rows + 100_000, retained
    assert index.fingerprint() == HFVideoIndex(load_hf_dataset(str(tmp_path / "big")), "big", "train").fingerprint()
    datasets.DatasetDict(train=table.select(range(rows - 1))).save_to_disk(tmp_path / "smaller")
    assert index.fingerprint() != HFVideoIndex(load_hf_dataset(str(tmp_path / "smaller")), "big", "train").fingerprint()


def _saved(tmp_path: Path, **columns) -> str:
    table = datasets.Dataset.from_dict(columns).cast_column("video", datasets.Video())
    datasets.DatasetDict(train=table).save_to_disk(tmp_path / "ds")
    return str(tmp_path / "ds")


@pytest.mark.parametrize("split, columns, message", [
    ("validation", {}, "has no split 'validation' (it has: train); set --hf_train_split / --hf_val_split"),
    ("train", dict(video_column="clip"), "has no column 'clip' (it has: video, label, name); set --hf_video_column"),
    ("train", dict(label_column="name"), "column 'name' holds Value('string'), not class ids; encode it: "
                                         "dataset.class_encode_column('name')"),
    ("train", dict(video_column="name"), "column 'name' holds Value('string'), not videos; cast it: "
                                         "dataset.cast_column('name', datasets.Video())"),
])
def test_a_split_or_column_that_cannot_be_used_is_one_line(tmp_path, split, columns, message):
    name = _saved(tmp_path, video=[{"bytes": b"x", "path": None}], label=[0], name=["a"])
    with pytest.raises(DataError) as error:
        HFVideoIndex(load_hf_dataset(name), name, split, **columns)
    assert name in str(error.value) and message in str(error.value) and "\n" not in str(error.value)


def test_unlabelled_rows_and_unknown_forms_are_one_line(tmp_path):
    features = datasets.Features(video=datasets.Video(), label=datasets.ClassLabel(names=["a"]))
    rows = datasets.Dataset.from_dict({"video": [{"bytes": b"x", "path": None}] * 2, "label": [0, -1]},
                                      features=features)
    datasets.DatasetDict(test=rows).save_to_disk(tmp_path / "unlabelled")
    with pytest.raises(DataError, match=r":test: 1 rows have no label in column 'label' \(first: row 1\)"):
        HFVideoIndex(load_hf_dataset(str(tmp_path / "unlabelled")), "x", "test")
    rows.save_to_disk(tmp_path / "one_split")
    with pytest.raises(DataError, match="holds one unnamed split; save a DatasetDict"):
        load_hf_dataset(str(tmp_path / "one_split"))
    with pytest.raises(DataError, match="no such folder, and not a Hub id"):
        load_hf_dataset(str(tmp_path / "nowhere" / "x y"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"cannot be opened \(.*\); give a videofolder tree"):
        load_hf_dataset(str(tmp_path / "empty"))
    with pytest.raises(RecipeError, match="dataset 'hf' needs 'hf_dataset'"):
        Recipe(dataset="hf")
