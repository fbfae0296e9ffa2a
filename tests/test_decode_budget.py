"""The decode budget (``max_decode_pixels``, ``data/probe.py``): a video whose clip is over it is refused
from its header, never decoded: listed in bad_videos.txt by training, ``test`` and ``data check``,
refused in one line by ``predict``. The slow tests run an 8000x8000 H.264 file through ``predict``
and training, as a user meets it (on the code before the budget: 19.7 GB and 3.7 GB resident)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY, TINY_SPEC, one_line_error

from accel_slowfast.commands.data import main as check_data
from accel_slowfast.data.builders import find_bad_videos
from accel_slowfast.data.probe import over_budget, probe_index
from accel_slowfast.data.readers import read_ucf101_split

CLIP = TINY["clip_len"] * TINY_SPEC.height * TINY_SPEC.width  # the tiny videos' clip: 8 frames of 40x32
HUGE = 8000  # the huge video's side, as the issue made it


def test_over_budget_lists_the_videos_whose_clip_does_not_fit(tiny_root, tmp_path):
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    table = probe_index(index, cache_dir=tmp_path)
    assert over_budget(table, TINY["clip_len"], CLIP) == {}  # exactly at the budget: fits
    large = over_budget(table, TINY["clip_len"], CLIP - 1)
    assert sorted(large) == list(range(len(index)))
    assert large[0] == (f"over the decode budget: a clip of 8 frames of 40x32 is {CLIP:,} pixels, more than "
                        f"max_decode_pixels {CLIP - 1:,}; downscale the video or raise max_decode_pixels")


def test_training_lists_an_over_budget_video_as_bad_before_decoding_it(tiny_root, tmp_path):
    from accelerate import Accelerator

    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    log = tmp_path / "bad_videos.txt"
    bad = find_bad_videos(index, Accelerator(cpu=True), log, shared_cache=False, clip_len=8,
                          max_decode_pixels=CLIP - 1)
    assert sorted(bad) == list(range(len(index)))
    lines = log.read_text().splitlines()
    assert len(lines) == len(index) and all("max_decode_pixels" in line for line in lines)


def test_data_check_lists_over_budget_videos(tiny_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        check_data(["check", "--decode", f"--data_root={tiny_root}", f"--work_dir={tmp_path / 'run'}",
                    f"--clip_len={TINY['clip_len']}", "--frame_interval=2", f"--max_decode_pixels={CLIP - 1}"])
    out = capsys.readouterr().out
    assert exit_status.value.code == 1, out
    assert "0 missing, 0 unreadable, 0 shorter than a clip, 20 over the decode budget" in out
    assert out.count("TOO LARGE") == 30 and "max_decode_pixels" in out


def test_predict_refuses_an_over_budget_video_in_one_line(trained, tiny_root, capsys):
    from accel_slowfast.commands.predict import main as predict_main

    _, checkpoint = trained
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    with pytest.raises(SystemExit) as exit_status:
        predict_main([str(video), f"--checkpoint={checkpoint}", f"--max_decode_pixels={CLIP - 1}"])
    assert exit_status.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: cannot read {video}: over the decode budget") and "\n" not in error


# The huge video, through the commands as a user runs them.

@pytest.fixture(scope="module")
def huge_video(tmp_path_factory) -> Path:
    """The issue's 8000x8000, 20-frame H.264 file (ffmpeg's test pattern; one thread, ~15 s)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg command is missing (apt-get install ffmpeg)")
    path = tmp_path_factory.mktemp("huge") / "huge.mp4"
    result = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={HUGE}x{HUGE}:rate=25",
                             "-frames:v", "20", "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", str(path)],
                            capture_output=True, text=True, timeout=300)
    if result.returncode:
        pytest.skip(f"ffmpeg cannot encode H.264 here (libx264 missing?): {result.stderr.strip()[-300:]}")
    return path


def _tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
        except (OSError, StopIteration):  # it ended meanwhile
            pass
    return total


def peak_rss(command: list[str], limit: int, log: Path) -> tuple[int, int, str]:
    """``(peak resident bytes, exit status, output)`` of ``command``; its output goes to ``log``.

    The peak is the process's own high-water mark (``ru_maxrss`` from ``wait4``). While it runs its
    process tree's resident memory is polled, and past ``limit`` the tree is killed (status -9), so a
    run that would exhaust the machine's memory fails the test instead.
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("measuring memory reads /proc (Linux)")
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        polled = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            polled = max(polled, _tree_rss(process.pid))
            if polled > limit:
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return max(usage.ru_maxrss * 1024, polled), process.returncode, log.read_text()


@pytest.mark.slow
def test_predict_keeps_a_huge_video_under_1_5_gb(huge_video, trained, tmp_path):
    _, checkpoint = trained
    limit = int(1.5 * 2**30)
    peak, status, output = peak_rss(["accel-slowfast", "predict", str(huge_video), f"--checkpoint={checkpoint}"],
                                    limit, tmp_path / "predict.log")
    assert peak < limit, f"predict peaked at {peak / 2**30:.2f} GB (killed at 1.5 GB):\n{output[-2000:]}"
    result = subprocess.CompletedProcess([], status, "", output)
    assert "over the decode budget" in one_line_error(result) and f"{HUGE}x{HUGE}" in output


@pytest.mark.slow
def test_training_with_a_huge_video_keeps_its_usual_peak(huge_video, tiny_root, tmp_path):
    """A tiny training run (one epoch) with one training video replaced by the huge one peaks within
    10 % of the same run on the tiny data, and lists the huge video in bad_videos.txt."""
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    replaced = data / "MoveUp" / "v_MoveUp_g02_c01.avi"  # a training video; FFmpeg reads the MP4 by its content
    shutil.copyfile(huge_video, replaced)
    peaks = {}
    for name, root in (("usual", tiny_root), ("huge", data)):
        work_dir = tmp_path / name
        values = {**TINY, "work_dir": work_dir, "data_root": root, "max_epochs": 1, "eval_interval": 1}
        command = [sys.executable, str(REPO / "train.py"), *(f"--{key}={value}" for key, value in values.items())]
        limit = 3 * peaks.get("usual", 2**30)
        peaks[name], status, output = peak_rss(command, limit, tmp_path / f"{name}.log")
        assert status == 0, f"{name}: exit {status}, peak {peaks[name] / 2**30:.2f} GB\n{output[-3000:]}"
    assert peaks["huge"] < 1.1 * peaks["usual"], {name: f"{peak / 2**30:.2f} GB" for name, peak in peaks.items()}
    listed = (tmp_path / "huge" / "bad_videos.txt").read_text()
    assert str(replaced) in listed and "over the decode budget" in listed
