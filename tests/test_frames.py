"""Frame folders (data/frames.py), prepared as mmaction2's tools prepare them: the tiny dataset's videos
extracted to ``rawframes/<Class>/<video>/img_00001.jpg ...`` with lists written as ``build_file_list.py``
writes them, read as ``RawframeDataset`` reads them, bad folders listed and replaced, trained end to end."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from conftest import one_line_error, run_command, tiny_recipe
from PIL import Image

from accel_slowfast.commands.data import main as check_data
from accel_slowfast.data.builders import build_indexes, find_bad_videos
from accel_slowfast.data.dataset import ClipDataset
from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.frames import FrameFolder, FrameFolderIndex, decode_image, read_rawframe_list
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.probe import probe_errors, probe_index
from accel_slowfast.data.readers import read_ucf101_classes
from accel_slowfast.errors import DataError


def extract(video: Path, folder: Path, tmpl: str = "img_{:05}.jpg", start: int = 1) -> int:
    """Every frame of ``video`` as files ``tmpl.format(start + i)`` (JPEG quality 95, as OpenCV's imwrite)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open_video(video) as decoded:
        frames = decoded.get_frames(np.arange(decoded.num_frames)).numpy()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / tmpl.format(start + i), quality=95)
    return len(frames)


def write_lists(root: Path, frames_root: Path, out: Path) -> None:
    """mmaction2's ``build_file_list.py`` output for split 1: ``ucf101_{train,val}_split_1_{rawframes,videos}``
    as text (one item a line) and JSON (``json.dump`` of a list of dicts)."""
    classes = read_ucf101_classes(root / "ucfTrainTestlist")
    for subset, split_file in (("train", "trainlist01.txt"), ("val", "testlist01.txt")):
        items = []
        for line in (root / "ucfTrainTestlist" / split_file).read_text().splitlines():
            video = line.split()[0]
            frame_dir = video[:-len(".avi")]
            total = len(os.listdir(frames_root / frame_dir))
            items.append((video, frame_dir, total, classes.index(video.split("/")[0])))
        stem = f"ucf101_{subset}_split_1"
        (out / f"{stem}_rawframes.txt").write_text("".join(f"{d} {n} {label}\n" for _, d, n, label in items))
        (out / f"{stem}_videos.txt").write_text("".join(f"{v} {label}\n" for v, _, _, label in items))
        with open(out / f"{stem}_rawframes.json", "w") as file:
            json.dump([{"frame_dir": d, "total_frames": n, "label": label} for _, d, n, label in items], file)
        with open(out / f"{stem}_videos.json", "w") as file:
            json.dump([{"filename": v, "label": label} for v, _, _, label in items], file)


@pytest.fixture(scope="session")
def rawframes(tiny_root, tmp_path_factory) -> Path:
    """``<tmp>/rawframes/<Class>/<video>/img_*.jpg`` of every tiny video, and the list files beside it."""
    out = tmp_path_factory.mktemp("ucf101")
    for video in sorted(tiny_root.glob("*/*.avi")):
        extract(video, out / "rawframes" / video.parent.name / video.stem)
    write_lists(tiny_root, out / "rawframes", out)
    return out


def frames_recipe(rawframes: Path, work_dir: Path, kind: str = "rawframes", suffix: str = "txt", **overrides):
    return tiny_recipe(rawframes / "rawframes", work_dir, dataset="list" if kind == "videos" else "rawframes",
                       train_list=str(rawframes / f"ucf101_train_split_1_{kind}.{suffix}"),
                       val_list=str(rawframes / f"ucf101_val_split_1_{kind}.{suffix}"), **overrides)


@pytest.mark.parametrize("suffix", ["txt", "json"])
def test_mmaction2_rawframe_lists_index_the_frame_folders_with_their_counts(rawframes, tmp_path, suffix):
    """On main ``--dataset=list`` read '<dir> 20' as the path: 'all 20 listed videos are missing'."""
    train, val = build_indexes(frames_recipe(rawframes, tmp_path, suffix=suffix), Accelerator(cpu=True))
    assert isinstance(train, FrameFolderIndex) and (len(train), len(val)) == (20, 10)
    assert all(Path(path).is_dir() for path in train.paths) and not train.missing
    assert train.total_frames.tolist() == [20] * 20 and train.offsets.tolist() == [0] * 20
    assert train.labels.tolist() == sorted(train.labels.tolist()) and train.classes == [str(i) for i in range(5)]


def test_a_rawframe_list_given_as_a_video_list_says_to_set_rawframes(rawframes, tmp_path):
    recipe = dataclasses.replace(frames_recipe(rawframes, tmp_path), dataset="list")
    with pytest.raises(DataError, match=r"ucf101_train_split_1_rawframes.txt:1: .*set dataset: rawframes"):
        build_indexes(recipe, Accelerator(cpu=True))


def test_a_video_list_in_mmaction2_json_reads_as_its_text_form(rawframes, tiny_root, tmp_path):
    """On main the JSON file failed as one malformed '<path> <label>' line, printed whole."""
    recipe = dataclasses.replace(frames_recipe(rawframes, tmp_path, "videos", "json"), data_root=str(tiny_root))
    train, val = build_indexes(recipe, Accelerator(cpu=True))
    text_train, _ = build_indexes(frames_recipe(rawframes, tmp_path, "videos", "txt", data_root=str(tiny_root)),
                                  Accelerator(cpu=True))
    assert (len(train), len(val)) == (20, 10) and list(train.paths) == list(text_train.paths)
    assert train.labels.tolist() == text_train.labels.tolist()


@pytest.mark.parametrize("sampling", ["random", "centre", "uniform"])
def test_a_frame_folder_gives_the_clips_of_the_video_it_came_from(tiny_root, tmp_path, sampling):
    """Lossless frames (PNG, Pillow's path) are bitwise the video's frames at the same indices; the quality-95
    JPEGs (simplejpeg's path) are within JPEG's error of them."""
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    count = extract(video, tmp_path / "png" / video.stem, "img_{:05}.png")
    extract(video, tmp_path / "jpg" / video.stem)
    indexes = [VideoIndex([VideoRecord(video, 0)], ["MoveUp"])]
    indexes += [FrameFolderIndex.of(VideoIndex([VideoRecord(tmp_path / kind / video.stem, 0)], ["MoveUp"]),
                                    [count], filename_tmpl=f"img_{{:05}}.{kind}") for kind in ("png", "jpg")]
    num_clips = 3 if sampling == "uniform" else 1
    clips = []
    for index in indexes:
        dataset = ClipDataset(index, clip_len=8, frame_interval=3, transforms=[lambda x: x],
                              clip_sampling=sampling, num_clips=num_clips, seed=5)
        clips.append(dataset._clips(0, dataset._rng(0)).flatten(0, 1))  # (num_clips * T, H, W, C)
    assert torch.equal(clips[0], clips[1])
    assert (clips[0].float() - clips[2].float()).abs().mean() < 3


def test_offset_start_index_and_template_pick_the_files_rawframedataset_reads(tiny_root, tmp_path):
    """Sampled index i reads filename_tmpl.format(i + start_index + offset)."""
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    extract(video, tmp_path / "f" / "v", "{:06d}.png", start=0)
    (tmp_path / "list.txt").write_text("f/v 5 10 0\nf/v 0 5 0\n")  # with_offset: two clips of one folder
    index = read_rawframe_list(tmp_path / "list.txt", tmp_path, filename_tmpl="{:06d}.png", start_index=0,
                               duplicates="drop")  # not repeats: other frames of the folder
    assert index.offsets.tolist() == [5, 0] and index.total_frames.tolist() == [10, 5]
    with index.open(0) as folder, open_video(video) as decoded:
        assert folder.num_frames == 10
        assert torch.equal(folder.get_frames(np.array([0, 9, 9, 2])), decoded.get_frames(np.array([5, 14, 14, 7])))


def test_a_grayscale_jpeg_decodes_to_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "g.jpg")
    rgb = decode_image(str(tmp_path / "g.jpg"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8 and np.abs(rgb.astype(int) - 77).max() <= 1


def _broken_copy(rawframes: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the frames (hard links) whose training list has one folder of each kind of fault, as
    ``tmp_path/train.txt``; {folder: expected reason}."""
    root = tmp_path / "rawframes"
    for src in (rawframes / "rawframes").glob("*/*"):
        (root / src.parent.name / src.name).mkdir(parents=True)
        for name in os.listdir(src):
            os.link(src / name, root / src.parent.name / src.name / name)
    lines = (rawframes / "ucf101_train_split_1_rawframes.txt").read_text().splitlines()
    gone, holed, short, corrupt = (line.split()[0] for line in lines[:4])
    os.rename(root / gone, root / f"{gone}_elsewhere")
    (root / holed / "img_00007.jpg").unlink()
    lines[2] = f"{short} 25 {lines[2].split()[2]}"  # the list says more frames than the folder holds
    (root / corrupt / "img_00011.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    return root, {gone: "missing", holed: "holds 6 of the 20", short: "holds 20 of the 25", corrupt: "img_00011.jpg"}


def test_bad_frame_folders_are_listed_with_their_reason_and_replaced(rawframes, tmp_path):
    root, reasons = _broken_copy(rawframes, tmp_path)
    index = read_rawframe_list(tmp_path / "train.txt", root)
    assert len(index) == 19 and len(index.missing) == 1
    log = tmp_path / "bad_videos.txt"
    known_bad = find_bad_videos(index, Accelerator(cpu=True), log, shared_cache=False, clip_len=8,
                                max_decode_pixels=10**8)
    assert sorted(Path(index.paths[i]).name for i in known_bad) == sorted(Path(f).name for f in list(reasons)[1:3])
    dataset = ClipDataset(index, clip_len=8, frame_interval=2, transforms=[lambda x: x.permute(3, 0, 1, 2)],
                          clip_sampling="centre", known_bad=known_bad, bad_video_log=log)
    samples = [dataset[i] for i in range(len(dataset))]
    replaced = {Path(index.paths[s["video_index"]]).name for s in samples if s["replaced"]}
    assert replaced == {Path(f).name for f in list(reasons)[1:]}
    listed = dict(line.split("\t") for line in log.read_text().splitlines())
    for folder, reason in reasons.items():
        (entry,) = [text for path, text in listed.items() if path.endswith(Path(folder).name)]
        assert reason in entry, listed


def test_the_probe_cache_notices_a_removed_frame(rawframes, tmp_path):
    root, _ = _broken_copy(rawframes, tmp_path)
    index = read_rawframe_list(tmp_path / "train.txt", root)
    assert len(probe_errors(probe_index(index))) == 2
    assert len(probe_errors(probe_index(index))) == 2  # from the cache
    (Path(index.paths[5]) / "img_00003.jpg").unlink()
    assert len(probe_errors(probe_index(index))) == 3


def test_official_ucf101_splits_read_over_a_frames_root(rawframes, tiny_root, tmp_path):
    recipe = tiny_recipe(rawframes / "rawframes", tmp_path, dataset="ucf101", frame_folders=True,
                         annotation_dir=str(tiny_root / "ucfTrainTestlist"))
    train, val = build_indexes(recipe, Accelerator(cpu=True))
    assert isinstance(val, FrameFolderIndex) and (len(train), len(val)) == (20, 10)
    assert train.classes == read_ucf101_classes(tiny_root / "ucfTrainTestlist")
    assert all(Path(path).is_dir() for path in val.paths) and train.total_frames.tolist() == [-1] * 20
    with train.open(0) as folder:  # counted from the folder
        assert folder.num_frames == 20 and folder.get_frames(np.array([19])).shape == (1, 32, 40, 3)


def test_a_missing_frame_folder_opens_as_an_error_not_a_hang(tmp_path):
    with pytest.raises(FileNotFoundError, match="no frame folder"):
        FrameFolder(str(tmp_path / "absent"), 20)


def test_data_check_decode_reports_a_frame_that_does_not_decode(rawframes, tmp_path, capsys):
    root, _ = _broken_copy(rawframes, tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        check_data(["check", "--decode", "--dataset=rawframes", f"--data_root={root}",
                    f"--train_list={tmp_path / 'train.txt'}",
                    f"--val_list={rawframes / 'ucf101_val_split_1_rawframes.txt'}", f"--work_dir={tmp_path / 'run'}",
                    "--clip_len=8", "--frame_interval=2"])
    out = capsys.readouterr().out
    assert exit_status.value.code == 1, out
    assert "1 missing, 3 unreadable" in out and "img_00011.jpg does not decode" in out


@pytest.mark.slow
def test_train_test_and_predict_on_frame_folders(rawframes, tiny_root, tmp_path):
    """A tiny run on frame folders with UCF101's classInd.txt as label_map, then ``test`` and ``predict``
    on a folder: class names, not numbers, in classes.json and in predict's output."""
    overrides = dict(dataset="rawframes", train_list=rawframes / "ucf101_train_split_1_rawframes.json",
                     val_list=rawframes / "ucf101_val_split_1_rawframes.txt", max_epochs=1, num_clips=2,
                     label_map=tiny_root / "ucfTrainTestlist" / "classInd.txt")
    trained = run_command("train.py", rawframes / "rawframes", tmp_path, **overrides)
    assert trained.returncode == 0, trained.stderr[-3000:]
    classes = read_ucf101_classes(tiny_root / "ucfTrainTestlist")
    assert json.loads((tmp_path / "classes.json").read_text()) == classes
    tested = run_command("test.py", rawframes / "rawframes", tmp_path, "--checkpoint", str(tmp_path / "checkpoints"
                                                                                             / "epoch_1"), **overrides)
    assert tested.returncode == 0, tested.stderr[-3000:]
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["num_videos"] == 10 and metrics["num_failed"] == 0
    folder = rawframes / "rawframes" / "MoveUp" / "v_MoveUp_g01_c01"
    predicted = subprocess.run([sys.executable, "-m", "accel_slowfast", "predict", str(folder),
                                f"--checkpoint={tmp_path / 'checkpoints' / 'epoch_1'}", "--top_k=2"],
                               capture_output=True, text=True, timeout=120)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert [line.split()[0] in classes for line in predicted.stdout.splitlines()] == [True, True]
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    failed = subprocess.run([sys.executable, "-m", "accel_slowfast", "predict", str(empty),
                             f"--checkpoint={tmp_path / 'checkpoints' / 'epoch_1'}"],
                            capture_output=True, text=True, timeout=120)
    assert "no frames" in one_line_error(failed)


def test_official_hmdb51_splits_read_over_a_frames_root(tmp_path):
    (tmp_path / "splits").mkdir()
    for cls, video in (("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0"), ("cartwheel", "Bodenturnen_f_cm_0")):
        for subset in ("1", "2"):
            (tmp_path / "frames" / cls / f"{video}{subset}").mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "frames" / cls / f"{video}{subset}" /
                                                                 "img_00001.jpg")
        (tmp_path / "splits" / f"{cls}_test_split1.txt").write_text(f"{video}1.avi 1 \n{video}2.avi 2 \n")
    recipe = tiny_recipe(tmp_path / "frames", tmp_path / "run", dataset="hmdb51", frame_folders=True,
                         annotation_dir=str(tmp_path / "splits"), num_classes=2)
    train, val = build_indexes(recipe, Accelerator(cpu=True))
    assert [Path(path).name for path in val.paths] == ["April_09_brush_hair_u_nm_np1_ba_goo_02", "Bodenturnen_f_cm_02"]
    assert isinstance(train, FrameFolderIndex) and train.classes == ["brush_hair", "cartwheel"]
    with train.open(1) as folder:
        assert folder.num_frames == 1 and folder.get_frames(np.array([0, 0])).shape == (2, 8, 8, 3)
