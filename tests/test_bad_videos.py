"""Bad videos never stop training: each kind is replaced deterministically and listed once."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import tiny_recipe

from accel_slowfast.data import ClipDataset, VideoIndex, VideoRecord
from accel_slowfast.data.synthetic import write_video
from accel_slowfast.data.transforms import val_transform
from accel_slowfast.engine.training import train


def _frames(n, h=32, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 255, size=(n, h, w, 3), dtype=np.uint8)


def _write_with_audio(path: Path, frames: np.ndarray, fps: int) -> None:
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("mp2", rate=16000, layout="mono")
        for i, frame in enumerate(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 640), np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * 640
            for packet in audio.encode(samples):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)


@pytest.fixture
def mixed_videos(tmp_path) -> dict[str, Path]:
    """One video of every kind: good ones with quirks, and broken ones."""
    paths = {name: tmp_path / f"{name}.avi" for name in
             ("good", "short", "odd_size", "odd_fps", "audio", "corrupt", "empty", "deleted")}
    write_video(paths["good"], _frames(24), fps=25)
    write_video(paths["short"], _frames(5), fps=25)  # shorter than one clip: loops
    write_video(paths["odd_size"], _frames(24, h=18, w=66), fps=25)
    write_video(paths["odd_fps"], _frames(24), fps=7)
    _write_with_audio(paths["audio"], _frames(24), fps=25)
    paths["corrupt"].write_bytes(np.random.default_rng(0).bytes(5000))
    paths["empty"].write_bytes(b"")
    write_video(paths["deleted"], _frames(24), fps=25)
    return paths


GOOD = ("good", "short", "odd_size", "odd_fps", "audio")
BAD = ("corrupt", "empty", "deleted")


def _dataset(paths, log, **kwargs):
    index = VideoIndex([VideoRecord(p, i % 2) for i, p in enumerate(paths.values())], ["a", "b"])
    return ClipDataset(index, clip_len=8, frame_interval=2, clip_sampling="centre", bad_video_log=log,
                       transforms=[val_transform(short_side=32, crop_size=32)], **kwargs)


def test_every_kind_of_video_yields_a_clip_and_bad_ones_are_listed_once(mixed_videos, tmp_path):
    log = tmp_path / "work" / "bad_videos.txt"
    dataset = _dataset(mixed_videos, log)
    mixed_videos["deleted"].unlink()  # disappears after indexing
    names = list(mixed_videos)
    for _ in range(2):  # a second epoch must not list them again
        loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2)
        batches = list(loader)
        replaced = torch.cat([b["replaced"] for b in batches]).tolist()
        assert replaced == [name in BAD for name in names]
        assert all(b["video"].shape[1:] == (3, 8, 32, 32) for b in batches)
    lines = log.read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).stem for line in lines) == sorted(BAD)
    assert all(line.split("\t")[1] for line in lines)  # every entry says why


def test_replacement_is_deterministic_and_the_same_in_every_worker(mixed_videos, tmp_path):
    dataset = _dataset(mixed_videos, tmp_path / "bad.txt", seed=3)
    corrupt = list(mixed_videos).index("corrupt")
    first = dataset[corrupt]
    again = _dataset(mixed_videos, tmp_path / "bad2.txt", seed=3)[corrupt]
    assert first["replaced"] and first["video_index"] == corrupt
    assert first["label"] == again["label"] and torch.equal(first["video"], again["video"])


def test_known_bad_videos_are_not_decoded(mixed_videos, tmp_path):
    dataset = _dataset(mixed_videos, tmp_path / "bad.txt", known_bad={0: "probe: broken header"})
    assert dataset[0]["replaced"]
    assert "probe: broken header" in (tmp_path / "bad.txt").read_text()


def test_all_videos_bad_is_a_clear_error(tmp_path):
    (tmp_path / "a.avi").write_bytes(b"")
    dataset = _dataset({"a": tmp_path / "a.avi"}, tmp_path / "bad.txt")
    with pytest.raises(RuntimeError, match="failed to decode"):
        dataset[0]


def test_training_runs_to_the_end_with_bad_videos_and_eval_counts_them(tiny_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    (data / "MoveUp/v_MoveUp_g02_c01.avi").write_bytes(b"")                       # train: empty
    (data / "ZoomIn/v_ZoomIn_g03_c02.avi").write_bytes(b"\x00garbage" * 500)       # train: corrupt
    (data / "MoveDown/v_MoveDown_g01_c01.avi").write_bytes(b"")                    # val: empty
    (data / "ZoomOut/v_ZoomOut_g02_c02.avi").unlink()                               # train: missing
    recipe = tiny_recipe(data, tmp_path / "run", max_epochs=2, num_workers=2)
    runner = train(recipe)
    assert runner.epoch == 2
    lines = (tmp_path / "run" / "bad_videos.txt").read_text().splitlines()
    reasons = {Path(line.split("\t")[0]).stem: line.split("\t")[1] for line in lines}
    assert len(lines) == len(reasons) == 4  # each path once, the missing one too
    assert sorted(reasons) == ["v_MoveDown_g01_c01", "v_MoveUp_g02_c01", "v_ZoomIn_g03_c02", "v_ZoomOut_g02_c02"]
    assert reasons["v_ZoomOut_g02_c02"].startswith("missing") and "empty file" in reasons["v_MoveUp_g02_c01"]
    (log,) = (tmp_path / "run").glob("train_*.log")
    assert ("Data: 20 training videos (3 unusable: 1 missing, 2 unreadable; see bad_videos.txt), 5 iterations/epoch "
            "on each of 1 processes; 10 validation videos (1 unusable: 0 missing, 1 unreadable; see bad_videos.txt)"
            ) in log.read_text()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["mode"] == "val"]
    assert [(r["num_videos"], r["num_failed"]) for r in val] == [(9, 1), (9, 1)]
    assert any(r.get("bad_clip_ratio", 0) > 0 for r in records if r["mode"] == "train")


@pytest.mark.slow
def test_two_processes_appending_at_once_lose_no_line(tmp_path):
    """``list_bad_videos`` from two processes, released together: every path listed once, behind a
    lock file beside the list (``filelock``, so no POSIX-only ``fcntl``)."""
    log, go = tmp_path / "bad_videos.txt", tmp_path / "go"
    code = ("import sys, time; from pathlib import Path; from accel_slowfast.data.dataset import list_bad_videos\n"
            "name, log, go = sys.argv[1:]\n"
            "Path(go + name).touch()\n"  # imported: ready
            "while not Path(go).exists(): time.sleep(0.01)\n"
            "for i in range(100): list_bad_videos(log, {f'{name}_{i}.avi': 'own', f'shared_{i}.avi': name})\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, name, str(log), str(go)], stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}) for name in ("a", "b")]
    while not all(Path(f"{go}{name}").exists() or writer.poll() is not None
                  for name, writer in zip("ab", writers, strict=True)):
        time.sleep(0.05)
    go.touch()  # both have imported torch & co.: they start at once
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()
    paths = [line.split("\t")[0] for line in log.read_text().splitlines()]
    expected = {f"{name}_{i}.avi" for name in ("a", "b", "shared") for i in range(100)}
    assert len(paths) == len(set(paths)) == 300 and set(paths) == expected
    assert (tmp_path / "bad_videos.txt.lock").exists()


def test_a_file_name_with_a_line_break_or_tab_keeps_one_quoted_line(tmp_path):
    from accel_slowfast.data.dataset import list_bad_videos

    log = tmp_path / "bad_videos.txt"
    strange = {str(tmp_path / "a\nb.avi"): "ValueError: empty file (0 bytes)",
               str(tmp_path / "c\td.avi"): "RuntimeError: first line\nsecond line"}
    assert list_bad_videos(log, strange) == list(strange)
    assert list_bad_videos(log, strange) == []  # a second run lists nothing again
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    paths = [json.loads(line.split("\t")[0]) for line in lines]
    assert paths == list(strange)
    assert lines[1].split("\t")[1] == "RuntimeError: first line second line"
