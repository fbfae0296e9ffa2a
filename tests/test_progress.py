"""Progress as users' outputs take it: a log file (nohup, SLURM) gets plain lines, a terminal a bar."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from conftest import REPO, TINY

pytestmark = pytest.mark.slow  # trains the tiny recipe in a subprocess


def _command(tiny_root, work_dir, *extra):
    values = {**TINY, "max_epochs": 1, "data_root": tiny_root, "work_dir": work_dir, "log_interval": 2}
    return [sys.executable, str(REPO / "train.py"), *(f"--{k}={v}" for k, v in values.items()), *extra]


def test_a_run_into_a_log_file_has_no_bar_redraws(tiny_root, tmp_path):
    log = tmp_path / "nohup.out"
    with open(log, "w") as out:  # as `nohup python train.py > nohup.out 2>&1` writes it
        run = subprocess.run(_command(tiny_root, tmp_path / "run"), stdout=out, stderr=subprocess.STDOUT,
                             timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    text = log.read_text()
    assert run.returncode == 0, text[-3000:]
    assert "\r" not in text and not re.search(r"it/s\]\S", text)  # no bar, nor a bar glued to a log line
    assert re.search(r"^\S+ \S+ - INFO - Epoch \[1\]\[2/5\]", text, re.M)  # a log line per interval


def test_a_terminal_still_shows_the_bar_unless_the_recipe_turns_it_off(tiny_root, tmp_path):
    def in_a_terminal(*extra):
        pid, fd = pty.fork()
        if pid == 0:  # a terminal of 120 columns (a new pseudo-terminal has 0: tqdm would draw nothing)
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            os.environ["OMP_NUM_THREADS"] = "1"
            command = _command(tiny_root, tmp_path / "run", *extra)
            os.execv(command[0], command)
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        text = b"".join(chunks).decode(errors="replace")
        assert os.waitstatus_to_exitcode(status) == 0, text[-3000:]
        return text

    assert re.search(r"epoch 1/1: +\d+%\|", in_a_terminal())  # (a terminal ends its lines with \r\n)
    assert "epoch 1/1: " not in in_a_terminal("--progress_bar=false", "--overwrite=true")  # the same work_dir again
