"""The data builders (data/builders.py): indexes checked before any work, every unusable video listed.

``build_indexes`` / ``build_datasets`` / ``find_bad_videos`` on small trees of placeholder files
(the readers never open a video), and ``python train.py`` the way users run it where the exit
code and the one-line message matter.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate import Accelerator
from conftest import needs_torchcodec, tiny_recipe

from accel_slowfast.data.augment import RandAugment, RandomErasing
from accel_slowfast.data.builders import build_indexes, clip_augmentations, decode_device
from accel_slowfast.errors import DataError, RecipeError
from accel_slowfast.recipe.recipe import Recipe

REPO = Path(__file__).parents[1]


def _files(root: Path, *relpaths: str) -> None:
    for relpath in relpaths:
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(b"x")


def _list_recipe(tmp_path: Path, train: str, val: str, **overrides):
    """A ``list`` recipe over placeholder files a/0.avi .. c/2.avi (classes a, b, c = labels 0, 1, 2)."""
    root = tmp_path / "videos"
    _files(root, *(f"{cls}/{i}.avi" for cls in "abc" for i in range(3)))
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "val.txt").write_text(val)
    return tiny_recipe(root, tmp_path / "run", dataset="list", train_list=str(tmp_path / "train.txt"),
                       val_list=str(tmp_path / "val.txt"), num_classes=3, **overrides)


def _ucf_recipe(tmp_path: Path, class_ind: str, train: str, test: str, num_classes=2):
    root, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    _files(root, *(f"{cls}/v_{cls}_g0{g}_c01.avi" for cls in ("Run", "Jump") for g in (1, 2)))
    lists.mkdir()
    (lists / "classInd.txt").write_text(class_ind)
    (lists / "trainlist01.txt").write_text(train)
    (lists / "testlist01.txt").write_text(test)
    return tiny_recipe(root, tmp_path / "run", dataset="ucf101", annotation_dir=str(lists),
                       num_classes=num_classes)


UCF_TRAIN = "Run/v_Run_g02_c01.avi 1\nJump/v_Jump_g02_c01.avi 2\n"
UCF_TEST = "Run/v_Run_g01_c01.avi\nJump/v_Jump_g01_c01.avi\n"


def _train_cli(recipe) -> subprocess.CompletedProcess:
    args = [f"--{key}={value}" for key, value in recipe.to_dict().items() if isinstance(value, str | int | float)]
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("case", ["empty_train_list", "negative_label", "class_without_folder"])
def test_bad_data_exits_2_with_one_line_naming_the_file(case, tmp_path):
    if case == "empty_train_list":  # the valid val list used to be blamed: "val.txt:1: label 0 outside 0..-1"
        recipe, blamed = _list_recipe(tmp_path, "", "a/0.avi 0\n"), "train.txt"
    elif case == "negative_label":
        recipe, blamed = _list_recipe(tmp_path, "a/0.avi 0\n\nb/0.avi -1\nc/0.avi 2\n", "a/1.avi 0\n"), "train.txt:3"
    else:
        recipe, blamed = _ucf_recipe(tmp_path, "1 Run\n2 Jump\n3 Swim\n", UCF_TRAIN, UCF_TEST, 3), "classInd.txt"
    result = _train_cli(recipe)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and blamed in errors[0] and "val.txt" not in errors[0], result.stderr
    if case == "negative_label":
        assert "negative" in errors[0] and "3 classes" in errors[0]
    if case == "class_without_folder":
        assert "Swim" in errors[0] and "no folder" in errors[0]


def test_labels_outside_the_training_classes_name_the_line_and_the_class_count(tmp_path):
    recipe = _list_recipe(tmp_path, "a/0.avi 0\nb/0.avi 1\n", "a/1.avi 0\nc/1.avi 2\n")
    with pytest.raises(DataError, match=r"val\.txt:2: label 2 .*train\.txt.* 2 classes"):
        build_indexes(recipe, Accelerator(cpu=True))


def test_a_validation_label_without_training_videos_is_an_error(tmp_path):
    recipe = _list_recipe(tmp_path, "a/0.avi 0\nc/0.avi 2\n", "b/1.avi 1\n")  # label 1: in range, never trained
    with pytest.raises(DataError, match=r"val\.txt.*b/1\.avi.*label 1.* 2 of its 3 classes"):
        build_indexes(recipe, Accelerator(cpu=True))


def _hmdb_recipe(tmp_path, marks: str):
    root, splits = tmp_path / "videos", tmp_path / "splits"
    _files(root, "wave/a.avi", "wave/b.avi")
    splits.mkdir()
    (splits / "wave_test_split1.txt").write_text(f"a.avi {marks[0]}\nb.avi {marks[1]}\n")
    return tiny_recipe(root, tmp_path / "run", dataset="hmdb51", annotation_dir=str(splits), num_classes=1)


def _folder_recipe(tmp_path):
    (tmp_path / "data" / "train" / "a").mkdir(parents=True)  # a class folder without videos
    _files(tmp_path / "data", "val/a/1.avi")
    return tiny_recipe(tmp_path / "data", tmp_path / "run", dataset="folder", num_classes=1)


@pytest.mark.parametrize("kind", ["ucf101", "hmdb51", "folder", "list_all_missing"])
def test_an_empty_training_set_names_its_file_or_folder(kind, tmp_path):
    if kind == "ucf101":
        recipe, blamed = _ucf_recipe(tmp_path, "1 Run\n2 Jump\n", "", UCF_TEST), "trainlist01.txt"
    elif kind == "hmdb51":
        recipe, blamed = _hmdb_recipe(tmp_path, "22"), "_test_split1.txt"  # every video is a test video
    elif kind == "folder":
        recipe, blamed = _folder_recipe(tmp_path), "train"
    else:
        recipe, blamed = _list_recipe(tmp_path, "x/0.avi 0\nx/1.avi 1\n", "a/0.avi 0\n"), "train.txt"
    with pytest.raises(DataError, match=blamed) as error:
        build_indexes(recipe, Accelerator(cpu=True))
    message = str(error.value)
    assert "\n" not in message and not any(name in message for name in ("testlist", "val.txt", "/val"))
    if kind == "list_all_missing":
        assert "all 2" in message and "missing" in message and "x/0.avi" in message


def test_list_paths_whose_folder_is_not_in_class_ind_are_listed_together(tmp_path):
    train = "Run/v_Run_g02_c01.avi 1\nSwim/v_Swim_g01_c01.avi 1\nDive/v_Dive_g01_c01.avi 2\n"
    recipe = _ucf_recipe(tmp_path, "1 Run\n2 Jump\n", train, UCF_TEST)
    with pytest.raises(DataError, match=r"trainlist01\.txt: 2 lines .*line 2 'Swim'.*line 3 'Dive'"):
        build_indexes(recipe, Accelerator(cpu=True))


def test_class_ind_matches_folders_ignoring_case(tmp_path):
    # UCF101 itself: classInd says HandstandPushups, the files say v_HandStandPushups_*
    recipe = _ucf_recipe(tmp_path, "1 Run\n2 jump\n", UCF_TRAIN, UCF_TEST)
    train_index, val_index = build_indexes(recipe, Accelerator(cpu=True))
    assert [r.label for r in train_index.records] == [0, 1] and len(val_index) == 2


def test_duplicates_are_reported_and_kept_or_dropped_by_the_recipe(tmp_path, caplog):
    train = "a/0.avi 0\nb/0.avi 1\na/0.avi 0\nc/0.avi 2\nb/0.avi 1\nc/1.avi 2\n"
    with caplog.at_level(logging.WARNING):
        kept, _ = build_indexes(_list_recipe(tmp_path, train, "a/1.avi 0\n"), Accelerator(cpu=True))
    assert len(kept) == 6
    assert "2 duplicate" in caplog.text and "train.txt:3" in caplog.text and "train.txt:5" in caplog.text
    assert "duplicate_videos" in caplog.text
    dropped, _ = build_indexes(_list_recipe(tmp_path, train, "a/1.avi 0\n", duplicate_videos="drop"),
                               Accelerator(cpu=True))
    assert [(r.path.parent.name, r.path.name) for r in dropped.records] == [
        ("a", "0.avi"), ("b", "0.avi"), ("c", "0.avi"), ("c", "1.avi")]
    with pytest.raises(ValueError, match="duplicate_videos"):
        _list_recipe(tmp_path, train, "a/1.avi 0\n", duplicate_videos="twice")


def test_videos_in_both_training_and_validation_sets_are_reported(tmp_path, caplog):
    recipe = _list_recipe(tmp_path, "a/0.avi 0\nb/0.avi 1\nc/0.avi 2\n", "a/0.avi 0\nb/1.avi 1\nc/0.avi 2\n")
    with caplog.at_level(logging.WARNING):
        build_indexes(recipe, Accelerator(cpu=True))
    assert "2 videos" in caplog.text and "both" in caplog.text and "a/0.avi" in caplog.text


@pytest.mark.parametrize("shared", [False, True])
def test_one_process_per_node_probes_or_the_main_process_alone_with_a_shared_cache(shared, tiny_root, tmp_path):
    from unittest.mock import MagicMock

    from accel_slowfast.data.builders import find_bad_videos
    from accel_slowfast.data.readers import read_ucf101_split

    accelerator = MagicMock(is_main_process=True)
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    assert find_bad_videos(index, accelerator, tmp_path / "bad.txt", shared_cache=shared, clip_len=8,
                           max_decode_pixels=10**8) == {}
    node_first, main_first = accelerator.local_main_process_first, accelerator.main_process_first
    (main_first if shared else node_first).assert_called_once()
    (node_first if shared else main_first).assert_not_called()


def test_the_per_clip_regularisation_is_what_the_recipe_asks_for():
    assert clip_augmentations(Recipe().augmentation_args, Recipe().model_args) == []
    recipe = Recipe(rand_augment=True, rand_augment_layers=4, random_erasing=0.25)
    augment = clip_augmentations(recipe.augmentation_args, recipe.model_args)
    assert [type(a) for a in augment] == [RandAugment, RandomErasing]
    assert augment[0]._augment.randaug_fn.num_sample_op == 4 and augment[1].p == 0.25


def test_decoding_on_the_cpu_needs_no_gpu(tmp_path):
    assert decode_device(tiny_recipe(tmp_path, tmp_path / "run"), Accelerator(cpu=True)).type == "cpu"


@needs_torchcodec
def test_nvdec_decoding_on_a_run_without_a_gpu_is_a_one_line_error(tmp_path):
    recipe = tiny_recipe(tmp_path, tmp_path / "run", decoder="torchcodec", decoder_device="cuda", num_workers=0)
    with pytest.raises(RecipeError, match="decoder_device 'cuda' decodes onto the run's GPU.*on cpu"):
        decode_device(recipe, Accelerator(cpu=True))


@needs_torchcodec
def test_torchcodec_without_ffmpeg_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as when FFmpeg's libraries do not load
    with pytest.raises(RecipeError, match="cannot load FFmpeg.*apt-get install ffmpeg") as raised:
        decode_device(tiny_recipe(tmp_path, tmp_path / "run", decoder="torchcodec"), Accelerator(cpu=True))
    assert "\n" not in str(raised.value)


@needs_torchcodec
def test_the_data_check_says_torchcodec_cannot_load_ffmpeg_instead_of_failing_every_video(tmp_path, monkeypatch,
                                                                                         capsys):
    from accel_slowfast.commands.data import main

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    with pytest.raises(SystemExit) as stopped:
        main(["check", "--decode", "--decoder=torchcodec", f"--data_root={tmp_path / 'absent'}"])
    assert stopped.value.code == 2 and "cannot load FFmpeg" in capsys.readouterr().err
