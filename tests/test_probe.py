import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import TINY_SPEC, decoder_params

from accel_slowfast.data.decoding import DECODERS, open_video
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.probe import probe_index
from accel_slowfast.data.readers import read_ucf101_split
from accel_slowfast.data.streams import probe_video
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
    assert probe_video((tmp_path / "ok.avi").read_bytes()) == ok  # a video held in memory
    assert probe_video(memoryview(b""))["error"] == "ValueError: empty file (0 bytes)"
    assert probe_video(b"\x00not a video" * 100)["error"]
    index = VideoIndex([VideoRecord(tmp_path / n, 0) for n in ("empty.avi", "junk.avi", "ok.avi")], ["a"])
    assert [bool(e) for e in probe_index(index, cache_dir=tmp_path)["error"]] == [True, True, False]


@pytest.mark.parametrize("decoder", decoder_params(DECODERS))
def test_probe_counts_frames_as_the_decoders_do(tmp_path, decoder):
    """A Matroska header has no frame count and no stream duration, and its container duration
    includes a late start (7 frames here): the probe must not count those as frames."""
    path = tmp_path / "late_start.mkv"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = 7 + i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    probed = probe_video(path)
    assert probed["error"] == "" and probed["num_frames"] == 20
    with open_video(path, decoder) as video:
        assert video.num_frames == probed["num_frames"]


@pytest.mark.slow
def test_data_check_command_lists_bad_videos(tiny_root, tmp_path):
    root = tmp_path / "data"
    subprocess.run(["cp", "-r", str(tiny_root), str(root)], check=True)
    (root / "MoveUp/v_MoveUp_g02_c01.avi").write_bytes(b"")
    (root / "ZoomIn/v_ZoomIn_g03_c02.avi").unlink()
    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "data", "check", f"--data_root={root}",
                             "--clip_len=16", "--frame_interval=2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "MISSING     " in result.stdout and "v_ZoomIn_g03_c02.avi" in result.stdout
    assert "UNREADABLE  " in result.stdout and "empty file" in result.stdout
    assert "TOO SHORT" in result.stdout  # 20-frame videos, 32-frame clips
    assert "MoveDown" in result.stdout and "== train: 19 videos, 5 classes ==" in result.stdout


def test_probing_shows_its_progress_and_a_cached_index_does_not(tiny_root, tmp_path, capsys):
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    probe_index(index, cache_dir=tmp_path)
    bar = capsys.readouterr().err
    assert "probing testlist01.txt: 10/10 videos, " in bar  # a plain line: not a terminal
    probe_index(index, cache_dir=tmp_path)
    assert "probing" not in capsys.readouterr().err


def test_a_cache_interrupted_while_being_written_is_never_read(tiny_root, tmp_path, monkeypatch):
    import datasets

    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    save = datasets.Dataset.save_to_disk

    def killed_while_saving(self, path, **kwargs):  # the files are there, the data is cut short
        save(self, path, **kwargs)
        for arrow in Path(path).glob("*.arrow"):
            arrow.write_bytes(arrow.read_bytes()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        probe_index(index, cache_dir=tmp_path)
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", save)
    assert list((tmp_path / "index").iterdir()) == []  # nothing half-written left behind
    table = probe_index(index, cache_dir=tmp_path)  # probes again
    assert len(table) == len(index) and set(table["error"]) == {""}
    (cached,) = (tmp_path / "index").iterdir()
    assert len(datasets.load_from_disk(str(cached))) == len(index)


def test_processes_probing_one_cache_at_once_keep_one_whole_copy(tiny_root, tmp_path, monkeypatch):
    """Nodes that share the cache folder may probe the same index at once: the first rename wins."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import datasets

    from accel_slowfast.data import probe

    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "train")
    both_looked = threading.Barrier(2, timeout=60)
    cache_key = probe._cache_key

    def key_then_wait(index):  # both processes find no cache before either has written one
        key = cache_key(index)
        both_looked.wait()
        return key

    monkeypatch.setattr(probe, "_cache_key", key_then_wait)
    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(lambda _: probe_index(index, cache_dir=tmp_path), range(2)))
    assert [len(table) for table in tables] == [len(index)] * 2
    (cached,) = (tmp_path / "index").iterdir()  # one folder, no temporary one left
    assert datasets.load_from_disk(str(cached))["path"] == [str(r.path) for r in index.records]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {  # the forms a cache was seen damaged in: a cut copy, edited or garbled metadata, a lost file
    "truncated arrow": lambda cache: _truncate(next(cache.glob("*.arrow"))),
    "garbage arrow": lambda cache: next(cache.glob("*.arrow")).write_bytes(b"\x00garbage" * 64),
    "garbage state.json": lambda cache: (cache / "state.json").write_text("{not json"),
    "garbage dataset_info.json": lambda cache: (cache / "dataset_info.json").write_bytes(b"\xff\xfe"),
    "no dataset_info.json": lambda cache: (cache / "dataset_info.json").unlink(),
    "no arrow": lambda cache: next(cache.glob("*.arrow")).unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cache_is_moved_aside_and_probed_again(tiny_root, tmp_path, damage, caplog):
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    probe_index(index, cache_dir=tmp_path)
    (cache,) = (tmp_path / "index").iterdir()
    DAMAGE[damage](cache)
    with caplog.at_level("WARNING"):
        table = probe_index(index, cache_dir=tmp_path)
    assert len(table) == len(index) and set(table["error"]) == {""}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert str(cache) in warning and "probing the videos again" in warning
    (aside,) = (tmp_path / "index").glob(f"{cache.name}.damaged-*")
    assert str(aside) in warning
    caplog.clear()
    assert len(probe_index(index, cache_dir=tmp_path)) == len(index)  # rewritten: read quietly from now on
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.slow
def test_data_check_heals_a_damaged_cache(tiny_root, tmp_path):
    """As a user meets it: every command failed with ArrowInvalid until the folder was found and deleted."""
    env = dict(os.environ, ACCEL_SLOWFAST_CACHE=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "accel_slowfast", "data", "check", f"--data_root={tiny_root}", "--clip_len=8",
               "--frame_interval=1"]
    assert subprocess.run(command, capture_output=True, text=True, timeout=120, env=env).returncode == 0
    for cache in (tmp_path / "cache" / "index").iterdir():
        _truncate(next(cache.glob("*.arrow")))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "cannot be read" in result.stderr and "Traceback" not in result.stderr
