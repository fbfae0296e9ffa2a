"""The index readers (data/readers.py): UCF101, HMDB51, mmaction2 lists and class folders, with their quirks."""

import logging

import pytest

from accel_slowfast.data.readers import read_list_file, read_ucf101_classes, read_ucf101_split
from accel_slowfast.errors import DataError


@pytest.fixture
def ucf_tree(tmp_path):
    """A UCF101-like tree with the real quirks: CRLF files, HandstandPushups vs v_HandStandPushups."""
    root, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    files = ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
             "HandstandPushups/v_HandStandPushups_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c02.avi"]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (lists / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n")
    (lists / "trainlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        b"HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n"
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\r\n"  # listed but missing on disk
    )
    # the test list is unlabeled, and one entry spells the folder the way the file names do
    (lists / "testlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nHandStandPushups/v_HandStandPushups_g01_c02.avi\r\n"
    )
    return root, lists


def test_class_index_is_one_based_in_the_file_and_zero_based_in_python(ucf_tree):
    assert read_ucf101_classes(ucf_tree[1]) == ["ApplyEyeMakeup", "HandstandPushups"]


def test_train_list_labels_and_missing_files_reported_not_fatal(ucf_tree, caplog):
    root, lists = ucf_tree
    with caplog.at_level(logging.WARNING):
        index = read_ucf101_split(root, lists, 1, "train")
    assert [(r.path.name, r.label) for r in index.records] == [
        ("v_ApplyEyeMakeup_g08_c01.avi", 0), ("v_HandStandPushups_g08_c01.avi", 1)]
    assert [p.name for p in index.missing] == ["v_ApplyEyeMakeup_g09_c01.avi"]
    assert "1 of 3 videos" in caplog.text and "g09" in caplog.text
    assert all(r.path.exists() for r in index.records)


def test_unlabeled_test_list_takes_labels_from_folders_case_insensitively(ucf_tree):
    root, lists = ucf_tree
    index = read_ucf101_split(root, lists, 1, "test")
    assert [r.label for r in index.records] == [0, 1]
    assert all(r.path.exists() for r in index.records)  # resolved to the on-disk spelling
    assert index.missing == []


def test_label_that_disagrees_with_the_folder_is_an_error(ucf_tree):
    root, lists = ucf_tree
    (lists / "trainlist02.txt").write_bytes(b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\r\n")
    with pytest.raises(ValueError, match="trainlist02.txt:1"):
        read_ucf101_split(root, lists, 2, "train")


def test_missing_split_file_names_the_file(ucf_tree):
    root, lists = ucf_tree
    with pytest.raises(DataError, match="testlist03.txt"):
        read_ucf101_split(root, lists, 3, "test")


def test_mmaction2_list_is_zero_based(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.avi", "a/y.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("a/x.avi 0\na/y.mp4 2\na/z.avi 1\n")
    index = read_list_file(tmp_path / "list.txt", tmp_path)
    assert [(r.path.name, r.label) for r in index.records] == [("x.avi", 0), ("y.mp4", 2)]
    assert index.classes == ["0", "1", "2"] and [p.name for p in index.missing] == ["z.avi"]


def test_mmaction2_list_rejects_labels_outside_the_classes(tmp_path):
    (tmp_path / "list.txt").write_text("x.avi 3\n")
    with pytest.raises(ValueError, match="list.txt:1: label 3"):
        read_list_file(tmp_path / "list.txt", tmp_path, classes=["a", "b"])


def test_hmdb51_split_files(tmp_path):
    from accel_slowfast.data.readers import read_hmdb51_split

    splits = tmp_path / "splits"
    splits.mkdir()
    for cls, lines in {"brush_hair": "a.avi 1 \r\nb.avi 2 \r\nc.avi 0 \r\n", "cartwheel": "d.avi 2\ne.avi 1\n"}.items():
        (splits / f"{cls}_test_split1.txt").write_text(lines)
        for name in ("a.avi", "b.avi", "c.avi", "d.avi", "e.avi"):
            (tmp_path / "videos" / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "videos" / cls / name).write_bytes(b"x")
    train = read_hmdb51_split(tmp_path / "videos", splits, 1, "train")
    test = read_hmdb51_split(tmp_path / "videos", splits, 1, "test")
    assert train.classes == ["brush_hair", "cartwheel"]
    assert [(r.path.parent.name, r.path.name, r.label) for r in train.records] == [
        ("brush_hair", "a.avi", 0), ("cartwheel", "e.avi", 1)]
    assert [(r.path.name, r.label) for r in test.records] == [("b.avi", 0), ("d.avi", 1)]
    with pytest.raises(DataError, match="_test_split2.txt"):
        read_hmdb51_split(tmp_path / "videos", splits, 2, "train")


def test_kinetics_csv_with_commas(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "train.csv").write_text("v.mp4,3\n")
    index = read_list_file(tmp_path / "train.csv", tmp_path)
    assert [(r.path.name, r.label) for r in index.records] == [("v.mp4", 3)] and len(index.classes) == 4


def test_class_per_folder_layout(tmp_path):
    from accel_slowfast.data.readers import read_class_folders

    for rel in ("b_class/1.mp4", "a_class/2.avi", "a_class/notes.txt", ".hidden/3.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    index = read_class_folders(tmp_path)
    assert index.classes == ["a_class", "b_class"]
    assert [(r.path.name, r.label) for r in index.records] == [("2.avi", 0), ("1.mp4", 1)]




def test_list_entries_outside_data_root_are_read_and_reported(tmp_path, caplog):
    root, elsewhere = tmp_path / "videos", tmp_path / "elsewhere"
    for folder in (root / "a", elsewhere):
        folder.mkdir(parents=True)
    for path in (root / "a" / "x.avi", elsewhere / "y.avi", elsewhere / "z.avi"):
        path.write_bytes(b"v")
    listing = tmp_path / "train.txt"
    listing.write_text(f"a/x.avi 0\n../elsewhere/y.avi 0\n{elsewhere / 'z.avi'} 0\n")
    with caplog.at_level(logging.WARNING):
        index = read_list_file(listing, root)
    assert len(index) == 3 and not index.missing
    (warning,) = [r.getMessage() for r in caplog.records if "outside data_root" in r.getMessage()]
    assert warning.startswith(f"2 entries of {listing} name files outside data_root {root}")
    assert f"{listing}:2" in warning and f"{listing}:3" in warning and f"{listing}:1" not in warning
