import subprocess
import sys

import numpy as np
from conftest import TINY_SPEC

from accel_slowfast.data.index import VideoIndex, VideoRecord, read_ucf101_split
from accel_slowfast.data.probe import probe_index, probe_video
from accel_slowfast.data.synthetic import write_video


def test_probe_reads_metadata_and_caches_it(tiny_root, tmp_path):
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    table = probe_index(index, cache_dir=tmp_path)
    assert len(table) == len(index) and set(table["error"]) == {""}
    row = table[0]
    assert (row["num_frames"], row["width"], row["height"]) == (TINY_SPEC.num_frames, TINY_SPEC.width, TINY_SPEC.height)
    assert row["fps"] == 25.0 and abs(row["duration"] - TINY_SPEC.num_frames / 25) < 0.05
    assert row["has_audio"] is False and row["path"] == str(index.records[0].path)
    cached = list((tmp_path / "index").iterdir())
    assert len(cached) == 1
    assert probe_index(index, cache_dir=tmp_path)["num_frames"] == table["num_frames"]  # served from the cache


def test_probe_names_what_is_wrong(tmp_path):
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "junk.avi").write_bytes(b"\x00not a video" * 100)
    write_video(tmp_path / "ok.avi", np.zeros((10, 16, 16, 3), np.uint8), fps=30)
    assert probe_video(tmp_path / "empty.avi")["error"] == "ValueError: empty file (0 bytes)"
    assert probe_video(tmp_path / "junk.avi")["error"]
    ok = probe_video(tmp_path / "ok.avi")
    assert ok["error"] == "" and ok["num_frames"] == 10 and ok["fps"] == 30.0
    index = VideoIndex([VideoRecord(tmp_path / n, 0) for n in ("empty.avi", "junk.avi", "ok.avi")], ["a"])
    assert [bool(e) for e in probe_index(index, cache_dir=tmp_path)["error"]] == [True, True, False]


def test_data_check_command_lists_bad_videos(tiny_root, tmp_path):
    root = tmp_path / "data"
    subprocess.run(["cp", "-r", str(tiny_root), str(root)], check=True)
    (root / "MoveUp/v_MoveUp_g02_c01.avi").write_bytes(b"")
    (root / "ZoomIn/v_ZoomIn_g03_c02.avi").unlink()
    result = subprocess.run([sys.executable, "-m", "accel_slowfast.data", "check", f"--data_root={root}",
                             "--clip_len=16", "--frame_interval=2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "MISSING     " in result.stdout and "v_ZoomIn_g03_c02.avi" in result.stdout
    assert "UNREADABLE  " in result.stdout and "empty file" in result.stdout
    assert "TOO SHORT" in result.stdout  # 20-frame videos, 32-frame clips
    assert "MoveDown" in result.stdout and "== train: 19 videos, 5 classes ==" in result.stdout
