"""The benchmarks run: each ``bench/*.py`` in its tiny mode prints its table (timings are not checked).

Benchmarks are scripts, not timed tests; this only guards them against breaking. They run as
subprocesses from the repository root, as their docstrings say.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TORCHCODEC_MISSING, needs_torchcodec

pytestmark = pytest.mark.slow  # subprocesses that train or benchmark: tens of seconds

ROOT = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gpu_throughput_tiny_prints_a_row_per_precision_with_mfu_in_true_flops():
    out = run_bench("gpu_throughput.py", "--tiny", "--peak-tflops=0.001")  # a peak, so MFU is printed
    assert "slowfast_tiny" in out and "clips/s" in out and "GMACs = " in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    for row in ("fp32", "bf16", "bf16+channels_last"):
        mfu, mfu_macs = (float(value.rstrip("%")) for value in rows[row][4:6])
        assert mfu == pytest.approx(2 * mfu_macs, rel=0.05), out  # a multiply-add is two FLOPs


def test_loop_overhead_tiny_prints_both_loops_and_the_ratio():
    out = run_bench("loop_overhead.py", "--tiny")
    assert "(a) hand-written Accelerate loop" in out and "(b) Runner" in out
    assert "(b)/(a) = " in out


def test_memory_tiny_prints_one_row_per_epoch():
    out = run_bench("memory.py", "--tiny", "--epochs", "2")
    rows = [line.split() for line in out.splitlines()]
    rows = [row for row in rows if len(row) == 5 and all(cell.replace(".", "").isdigit() for cell in row)]
    assert [row[0] for row in rows] == ["1", "2"], out
    assert "worker RSS change" in out


@pytest.mark.filterwarnings("ignore")
def test_vs_mmaction2_tiny_prints_our_row():
    out = run_bench("vs_mmaction2.py", "--tiny")
    assert "time/iter (s)" in out and "data_time (s)" in out
    assert any(line.startswith("ours ") for line in out.splitlines()), out


@pytest.mark.slow
def test_scale_tiny_prints_a_row_per_size():
    out = run_bench("scale.py", "--tiny")
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [row[0] for row in rows] == ["200", "800"], out
    assert all(len(row) == 10 and row[5] == row[8] == "/" for row in rows), out  # 2 workers, before and after


def test_gpu_profile_tiny_splits_the_step_by_kind_and_the_forward_by_pathway():
    out = run_bench("gpu_profile.py", "--tiny")
    kinds = out.split("kind of operator")[1].split("forward, by part")[0]
    shares = {line.split()[0]: float(line.split()[-1].rstrip("%")) for line in kinds.splitlines()[1:] if line.strip()}
    assert "convolution" in shares and "batchnorm" in shares and sum(shares.values()) == pytest.approx(100, abs=1)
    parts = out.split("forward, by part")[1].split("slowest")[0]
    assert all(f"{part} " in parts for part in ("slow pathway", "fast pathway", "lateral fusion", "head"))


def test_gpu_session_tiny_runs_every_step_and_keeps_their_outputs(tmp_path):
    """The one script a lent GPU machine runs: its CPU-sized twin runs every step without a failure."""
    done = subprocess.run(["bash", "bench/gpu_session.sh", "--tiny"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OUT": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed (exit" not in done.stdout, done.stdout[-3000:]
    outputs = {path.name for path in tmp_path.iterdir()}
    assert {"device.txt", "throughput.txt", "profile.txt"} <= outputs, outputs
    assert ("decode.txt" in outputs) == (not TORCHCODEC_MISSING), outputs  # skipped, saying why, without it
    assert "clips/s" in (tmp_path / "throughput.txt").read_text()


@needs_torchcodec
def test_gpu_decode_tiny_prints_a_row_per_decoding_path_and_codec():
    out = run_bench("gpu_decode.py", "--tiny")
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("mpeg4", "h264", "hevc")]
    assert {row[0] for row in rows} == {"mpeg4", "h264", "hevc"}, out
    for codec in ("mpeg4", "h264", "hevc"):
        names = [" ".join(row[1:-4]) for row in rows if row[0] == codec]
        assert "cpu, 1 worker" in names and "cpu, decode only" in names, out
        assert ("cuda, main" if torch.cuda.is_available() else "cpu, main") in names, out
    assert all(float(row[-4]) > 0 and float(row[-3]) > 0 for row in rows), out  # clips/s, cores
    if not torch.cuda.is_available():
        assert all(row[-1] == "0" for row in rows), out  # nothing to fall back from
def test_multigrid_tiny_prints_each_epochs_time_for_both_schedules_and_their_top1():
    out = run_bench("multigrid.py", "--tiny")
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"], out  # multigrid trains 1.5 x the 3 epochs
    assert "multigrid schedule:" in out and "final top1_acc: standard " in out and "x faster" in out


def test_gpu_session_runs_only_the_steps_it_is_given(tmp_path):
    done = subprocess.run(["bash", "bench/gpu_session.sh", "--tiny", "profile"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OUT": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert {path.name for path in tmp_path.iterdir()} == {"device.txt", "profile.txt"}


def test_jpeg_decoders_tiny_prints_a_row_per_installed_decoder_with_its_pixels_checked():
    out = run_bench("jpeg_decoders.py", "--tiny")
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
            ("pillow", "torchvision", "simplejpeg", "opencv")}
    assert {"pillow", "torchvision", "simplejpeg"} <= set(rows), out
    assert all("bitwise the same" in row or "not installed" in row for row in rows.values()), out


@pytest.mark.parametrize("source", ["h264-1280x720", "mpeg4-320x240"])
def test_data_sources_tiny_prints_every_row_with_its_ratio_to_the_originals_and_target(source):
    done = subprocess.run([sys.executable, "bench/data_sources.py", "--tiny", "--source", source], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bad video" not in done.stderr, done.stderr[-3000:]  # the workers stopped before the files went
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("(")}
    assert list(rows) == ["(i)", "(ii)", "(iii)", "(iv)", "(v)", "(v')"], done.stdout
    cells = {row: line[34:].split()[:4] for row, line in rows.items()}  # clips/s, CPU ms, both ratios to (i)
    for rate, cost, rate_ratio, cost_ratio in cells.values():  # the printed cells round: 5 % apart at most
        assert float(rate_ratio[:-1]) == pytest.approx(float(rate) / float(cells["(i)"][0]), rel=0.05), done.stdout
        assert float(cost_ratio[:-1]) == pytest.approx(float(cells["(i)"][1]) / float(cost), rel=0.05), done.stdout
    for row in ("(iii)", "(iv)", "(v)"):
        assert "holds" in rows[row] or "MISSES" in rows[row], done.stdout
    assert ("holds" in rows["(ii)"] or "MISSES" in rows["(ii)"]) == source.startswith("h264"), done.stdout
