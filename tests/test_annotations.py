"""mmaction2's annotation files (data/annotations.py): text and JSON lists as ``build_file_list.py`` writes
them, label maps, and one-line errors that name the file and the entry, never the file's content."""

import json

import pytest
from accelerate import Accelerator
from conftest import tiny_recipe

from accel_slowfast.data.annotations import Entry, check_labels, read_frame_list, read_label_map, read_video_list
from accel_slowfast.data.builders import build_indexes
from accel_slowfast.errors import DataError, RecipeError
from accel_slowfast.recipe.recipe import Recipe

SECRET = "NOT_TO_BE_SHOWN"  # written into malformed files: an error must not print the file's content


def _json(tmp_path, items, name="list.json"):
    path = tmp_path / name
    with open(path, "w") as file:
        json.dump(items, file)  # as build_file_list.py --output-format json: the whole list on one line
    return path


def test_text_lists_as_build_file_list_writes_them(tmp_path):
    (tmp_path / "videos.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0\nJump/v_Jump_g08_c01.avi 1\n")
    (tmp_path / "frames.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01 121 0\n")
    (tmp_path / "offsets.txt").write_text("a/v_0 12 163 3\na/v_0 175 40 3\n")
    assert read_video_list(tmp_path / "videos.txt")[1] == Entry("Jump/v_Jump_g08_c01.avi", 1,
                                                                f"{tmp_path}/videos.txt:2")
    assert read_frame_list(tmp_path / "frames.txt") == [
        Entry("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", 0, f"{tmp_path}/frames.txt:1", 121, 0)]
    assert [(e.offset, e.total_frames, e.label) for e in read_frame_list(tmp_path / "offsets.txt")] == [
        (12, 163, 3), (175, 40, 3)]


def test_json_lists_as_build_file_list_writes_them(tmp_path):
    videos = _json(tmp_path, [{"filename": "a/v_0.avi", "label": 2}], "videos.json")
    frames = _json(tmp_path, [{"frame_dir": "a/v_0", "total_frames": 40, "label": 2},
                              {"frame_dir": "a/v_0", "total_frames": 10, "label": 2, "offset": 30}], "frames.json")
    assert [(e.path, e.label) for e in read_video_list(videos)] == [("a/v_0.avi", 2)]
    assert [(e.path, e.total_frames, e.offset, e.where.split(": ")[1]) for e in read_frame_list(frames)] == [
        ("a/v_0", 40, 0, "entries[0]"), ("a/v_0", 10, 30, "entries[1]")]


@pytest.mark.parametrize("content, blamed", [
    ("[{\"filename\": \"" + SECRET + "\", \"label\": 0}", "not valid JSON (JSONDecodeError at line 1"),
    (json.dumps({"filename": SECRET, "label": 0}), "expected a JSON list of objects"),
    (json.dumps([{"filename": SECRET, "label": 0}, [SECRET]]), "entries[1] is a JSON list, not an object"),
    (json.dumps([{"filename": SECRET}]), "entries[0] has no 'label'"),
    (json.dumps([{"filename": SECRET, "label": [0, 3]}]), "entries[0]: 'label' must be an integer, got a list: multi"),
    (json.dumps([{"filename": SECRET, "label": "3"}]), "entries[0]: 'label' must be an integer"),
    (json.dumps([{"frame_dir": SECRET, "total_frames": 4, "label": 0}]), "entries[0] names a frame folder"),
])
def test_a_malformed_json_list_is_one_line_naming_the_file_and_entry(tmp_path, content, blamed):
    (tmp_path / "list.json").write_text(content)
    with pytest.raises(DataError) as error:
        read_video_list(tmp_path / "list.json")
    message = str(error.value)
    assert blamed in message and str(tmp_path / "list.json") in message
    assert SECRET not in message and "\n" not in message


@pytest.mark.parametrize("item, blamed", [
    ({"frame_dir": SECRET, "label": 0}, "entries[0] has no 'total_frames'"),
    ({"frame_dir": SECRET, "total_frames": -4, "label": 0}, "'total_frames' must be a non-negative integer"),
    ({"frame_dir": SECRET, "total_frames": 4, "label": 0, "offset": 1.5}, "'offset' must be a non-negative"),
    ({"frame_dir": "", "total_frames": 4, "label": 0}, "'frame_dir' must be a non-empty string"),
    ({"filename": SECRET, "label": 0}, "entries[0] names a video file ('filename'): set dataset: list"),
])
def test_a_malformed_json_frame_entry_is_named(tmp_path, item, blamed):
    with pytest.raises(DataError, match="list.json: ") as error:
        read_frame_list(_json(tmp_path, [item]))
    assert blamed in str(error.value) and SECRET not in str(error.value)


@pytest.mark.parametrize("text, blamed", [
    ("a/v_0 12 163 3\na/v_1 163 3\n", "frames.txt:2: expected 'frame_dir offset total_frames label' (as line 1)"),
    ("a/v_0 163 3\na/v_1 x 3\n", "frames.txt:2: expected 'frame_dir total_frames label'"),
    ("a/v_0.avi 3\n", "frames.txt:1: expected 'frame_dir total_frames label' (as line 1), got 'a/v_0.avi 3'; a video"),
    ("a/v_0 1 2 3 4\n", "frames.txt:1: expected 'frame_dir total_frames label'"),
    ("a/v_0 -5 3\n", "frames.txt:1: frame counts and offsets cannot be negative"),
])
def test_a_malformed_text_frame_list_is_one_line_naming_file_and_line(tmp_path, text, blamed):
    (tmp_path / "frames.txt").write_text(text)
    with pytest.raises(DataError) as error:
        read_frame_list(tmp_path / "frames.txt")
    assert blamed in str(error.value)


def test_a_long_malformed_line_is_shortened(tmp_path):
    (tmp_path / "videos.txt").write_text("a/v_0.avi " + "x" * 500 + SECRET + "\n")
    with pytest.raises(DataError, match=r"videos.txt:1: expected '<path> <label>'") as error:
        read_video_list(tmp_path / "videos.txt")
    assert SECRET not in str(error.value) and len(str(error.value)) < 250


def test_label_maps_one_name_a_line_or_ucf101_class_ind(tmp_path):
    (tmp_path / "label_map_k400.txt").write_text("abseiling\nair drumming\nanswering questions\n")
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n")
    assert read_label_map(tmp_path / "label_map_k400.txt") == ["abseiling", "air drumming", "answering questions"]
    assert read_label_map(tmp_path / "classInd.txt") == ["ApplyEyeMakeup", "ApplyLipstick"]
    (tmp_path / "twice.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError, match=r"twice.txt:3: class 'a' is named again \(first on line 1\)"):
        read_label_map(tmp_path / "twice.txt")


def test_a_label_the_label_map_does_not_name_is_one_line(tmp_path):
    entries = [Entry("a/0.avi", 0, "train.txt:1"), Entry("a/1.avi", 3, "train.txt:2")]
    with pytest.raises(DataError, match=r"^train.txt:2: label 3 is not a class of label_map map.txt, which "
                                        r"has 2 classes, labels 0..1$"):
        check_labels(entries, ["x", "y"], "label_map map.txt")


def _videos(tmp_path):
    for relpath in ("a/0.avi", "a/1.avi", "b/0.avi", "b/1.avi"):
        (tmp_path / "videos" / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "videos" / relpath).write_bytes(b"x")
    (tmp_path / "train.txt").write_text("a/0.avi 0\nb/0.avi 1\n")
    (tmp_path / "val.txt").write_text("a/1.avi 0\nb/1.avi 1\n")
    return dict(dataset="list", train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))


def test_list_datasets_take_their_class_names_from_label_map(tmp_path):
    """On main classes.json held ["0", "1"] and predict printed numbers."""
    (tmp_path / "classInd.txt").write_text("1 Run\n2 Jump\n")
    recipe = tiny_recipe(tmp_path / "videos", tmp_path / "run", label_map=str(tmp_path / "classInd.txt"),
                         **_videos(tmp_path))
    train, val = build_indexes(recipe, Accelerator(cpu=True))
    assert train.classes == val.classes == ["Run", "Jump"]
    (tmp_path / "classInd.txt").write_text("1 Run\n")
    with pytest.raises(DataError, match=r"train.txt:2: label 1 is not a class of label_map .*, which has 1 classes"):
        build_indexes(recipe, Accelerator(cpu=True))


@pytest.mark.parametrize("keys, blamed", [
    (dict(dataset="ucf101", data_root="d", annotation_dir="a", label_map="m.txt"), "'label_map' names the labels"),
    (dict(dataset="list", train_list="t", val_list="v", frame_folders=True), "'frame_folders' reads the ucf101"),
    (dict(dataset="rawframes", train_list="t"), "dataset 'rawframes' needs 'train_list' and 'val_list'"),
    (dict(dataset="rawframes", train_list="t", val_list="v", filename_tmpl="img_{}_{}.jpg"), "cannot take a frame"),
    (dict(dataset="rawframes", train_list="t", val_list="v", filename_tmpl="img.jpg"), "gives every frame the same"),
    (dict(dataset="ucf101", data_root="d", annotation_dir="a", frame_folders=True, decoder_device="cuda"),
     "frame folders decode their JPEGs on the CPU"),
])
def test_frame_and_label_map_keys_are_checked_at_load(keys, blamed):
    with pytest.raises(RecipeError, match=blamed):
        Recipe(**keys).validate()
