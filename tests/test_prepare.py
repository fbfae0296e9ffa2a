"""accel-slowfast data prepare: a tree converted, mmaction2's list files, resume, failures, processes, progress."""

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from accel_slowfast.commands.data import main
from accel_slowfast.data.prepare import prepare
from accel_slowfast.data.readers import read_list_file, read_ucf101_split
from accel_slowfast.data.transcode import FRAME_NAME
from accel_slowfast.progress import Progress


def class_tree(tiny_root: Path, folder: Path, per_class: int = 2, corrupt: bool = False) -> Path:
    """Two classes of ``per_class`` tiny videos each (plus an undecodable ``Zoom/broken.avi``)."""
    for name in ("MoveUp", "ZoomIn"):
        (folder / name[:4]).mkdir(parents=True)
        for video in sorted((tiny_root / name).iterdir())[:per_class]:
            shutil.copy(video, folder / name[:4] / video.name)
    if corrupt:
        (folder / "Zoom" / "broken.avi").write_bytes(b"RIFF" + b"\0" * 4000)
    return folder


def test_ucf101_videos_and_mmaction2_list_files(tiny_root, tmp_path):
    splits = tiny_root / "ucfTrainTestlist"
    summary = prepare(tiny_root, tmp_path / "videos", splits=splits, short_side=32, stream=io.StringIO())
    assert (summary.converted, summary.skipped, summary.failed, summary.failed_list) == (30, 0, {}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ucf101_train_split_1_videos.txt", "ucf101_val_split_1_videos.txt", "videos"]
    for subset, name in (("train", "train"), ("test", "val")):
        index = read_ucf101_split(tiny_root, splits, 1, subset)
        lines = (tmp_path / f"ucf101_{name}_split_1_videos.txt").read_text().splitlines()
        expected = [f"{os.path.relpath(path, tiny_root)[:-4]}.mp4 {label}"  # 0-based labels, as mmaction2's
                    for path, label in zip(index.paths, index.labels.tolist(), strict=True)]
        assert lines == expected
        assert all(re.fullmatch(r"Move\w+/v_\w+_g\d\d_c\d\d\.mp4 \d", line) or line.startswith("Zoom")
                   for line in lines)
        listed = read_list_file(tmp_path / f"ucf101_{name}_split_1_videos.txt", data_root=tmp_path / "videos")
        assert (len(listed), listed.missing, listed.labels.tolist()) == (len(index), [], index.labels.tolist())
    with av.open(str(tmp_path / "videos" / lines[0].split()[0])) as container:
        assert container.streams.video[0].codec_context.height == 32  # 40x32 -> short side 32 (unchanged)


def test_frames_of_a_class_tree_and_one_list(tiny_root, tmp_path):
    source = class_tree(tiny_root, tmp_path / "src")
    summary = prepare(source, tmp_path / "rawframes", to="frames", short_side=16, stream=io.StringIO())
    assert summary.converted == 4
    assert summary.lists == [tmp_path / "rawframes.txt"]
    lines = (tmp_path / "rawframes.txt").read_text().splitlines()
    assert [line.split()[1:] for line in lines] == [["20", "0"], ["20", "0"], ["20", "1"], ["20", "1"]]
    folder = tmp_path / "rawframes" / lines[2].split()[0]
    assert folder.parent.name == "Zoom" and folder.is_dir()  # Class/name, no extension
    assert sorted(os.listdir(folder)) == [FRAME_NAME.format(i) for i in range(1, 21)]


def test_hmdb51_splits_give_mmaction2s_list_names(tiny_root, tmp_path):
    source = class_tree(tiny_root, tmp_path / "videos")
    (tmp_path / "splits").mkdir()
    for name in ("Move", "Zoom"):  # one video to train on, one to test
        first, second = sorted(os.listdir(source / name))
        (tmp_path / "splits" / f"{name}_test_split1.txt").write_text(f"{first} 1 \n{second} 2 \n")
    prepare(source, tmp_path / "rawframes", to="frames", splits=tmp_path / "splits", short_side=16,
            stream=io.StringIO())
    train = (tmp_path / "hmdb51_train_split_1_rawframes.txt").read_text().splitlines()
    val = (tmp_path / "hmdb51_val_split_1_rawframes.txt").read_text().splitlines()
    assert [line.split()[1:] for line in train + val] == [["20", "0"], ["20", "1"]] * 2
    assert train[1] == f"Zoom/{Path(sorted(os.listdir(source / 'Zoom'))[0]).stem} 20 1"


def test_a_second_run_skips_finished_outputs_and_redoes_interrupted_ones(tiny_root, tmp_path):
    source, out = class_tree(tiny_root, tmp_path / "src"), tmp_path / "videos"
    first = prepare(source, out, short_side=16, stream=io.StringIO())
    assert (first.converted, first.skipped) == (4, 0)
    done = sorted(out.rglob("*.mp4"))
    stamps = [path.stat().st_mtime_ns for path in done]
    # an interrupted run: one output never renamed into place, its temporary file left half-written
    done[1].rename(done[1].with_name(f".{done[1].name}.part"))
    done[1].with_name(f".{done[1].name}.part").write_bytes(b"half")
    second = prepare(source, out, short_side=16, stream=io.StringIO())
    assert (second.converted, second.skipped) == (1, 3)
    assert sorted(out.rglob("*.mp4")) == done and not list(out.rglob("*.part"))
    assert [path.stat().st_mtime_ns for path in done][::2] == stamps[::2]  # the others were not rewritten
    with av.open(str(done[1])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
    frames = prepare(source, tmp_path / "frames", to="frames", short_side=16, stream=io.StringIO())
    leftover = tmp_path / "frames" / "Move" / f".{Path(sorted(os.listdir(source / 'Move'))[0]).stem}.part"
    shutil.rmtree(leftover.with_name(leftover.name[1:-5]))
    leftover.mkdir()
    (leftover / "img_00001.jpg").write_bytes(b"half")
    again = prepare(source, tmp_path / "frames", to="frames", short_side=16, stream=io.StringIO())
    assert (frames.converted, again.converted, again.skipped) == (4, 1, 3)
    assert not leftover.exists()
    assert (tmp_path / "frames.txt").read_text().split("\n")[0].split()[1] == "20"


def test_two_processes_write_what_one_writes(tiny_root, tmp_path):
    source = class_tree(tiny_root, tmp_path / "src", per_class=3)
    # 120x96 videos: x264 (one thread) was seen to write different bytes run to run below about 80x64
    for to, short_side in (("videos", 96), ("frames", 16)):
        one = prepare(source, tmp_path / "one" / to, to=to, short_side=short_side, processes=1, stream=io.StringIO())
        two = prepare(source, tmp_path / "two" / to, to=to, short_side=short_side, processes=2, stream=io.StringIO())
        assert one.converted == two.converted == 6
    files = sorted(str(path.relative_to(tmp_path / "one")) for path in (tmp_path / "one").rglob("*") if path.is_file())
    assert files == sorted(str(path.relative_to(tmp_path / "two")) for path in (tmp_path / "two").rglob("*")
                           if path.is_file())
    assert len(files) == 6 + 6 * 20 + 2
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_progress_without_a_terminal_is_plain_lines():
    stream = io.StringIO()
    progress = Progress(3, "prepare", unit="video", stream=stream)
    for failed in (0, 1, 1):
        progress.update(1, failed=failed)
    progress.close()
    assert "\r" not in stream.getvalue()
    line = r"prepare: 3/3 videos, 1 failed, [\d.]+ videos/s, elapsed 00:00, ETA 00:00\n"
    assert re.fullmatch(line, stream.getvalue())


def test_a_corrupt_video_is_listed_and_the_others_finish(tiny_root, tmp_path):
    source = class_tree(tiny_root, tmp_path / "src", corrupt=True)
    command = [sys.executable, "-m", "accel_slowfast", "data", "prepare", str(source), str(tmp_path / "videos"),
               "--short-side=16", "--processes=2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    failed_list = tmp_path / "videos_failed.txt"
    assert result.stdout.strip() == (f"prepared 4 videos into {tmp_path / 'videos'} (0 done before), 1 failed "
                                     f"(listed in {failed_list}); lists: {tmp_path / 'videos.txt'}")
    assert "\r" not in result.stderr and "prepare: 5/5 videos, 1 failed" in result.stderr
    path, reason = failed_list.read_text().strip().split("\t")
    assert path == str(source / "Zoom" / "broken.avi") and reason.startswith("InvalidDataError")
    assert len((tmp_path / "videos.txt").read_text().splitlines()) == 4
    assert "broken" not in (tmp_path / "videos.txt").read_text()
    (source / "Zoom" / "broken.avi").unlink()
    assert (prepare(source, tmp_path / "videos", short_side=16, stream=io.StringIO()).skipped, failed_list.exists()
            ) == (4, False)


@pytest.mark.parametrize("args, message", [
    (["--splits", "{src}"], "neither UCF101's (classInd.txt"),
    (["--to", "frames"], "is inside the source"),
])
def test_bad_input_is_one_line(tiny_root, tmp_path, capsys, args, message):
    out = tiny_root / "out" if "frames" in args else tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["prepare", str(tiny_root), str(out), *(arg.format(src=tmp_path) for arg in args)])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert not out.exists()


def test_an_odd_short_side_for_videos_is_refused(tiny_root, tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):
        main(["prepare", str(tiny_root), str(tmp_path / "out"), "--short-side=255"])
    assert "--short-side 255: give 0 or a positive size (even for videos" in capsys.readouterr().err
