"""Stop signals as schedulers send them: to the whole process group, loader workers included.

SIGTERM/SIGINT finish the step, save ``iter_N`` and exit 130; SIGUSR1 does the same and exits 75
(requeue). A resumed run ends bitwise equal to an uninterrupted one.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from conftest import one_line_error, tiny_recipe
from safetensors.torch import load_file

import accel_slowfast.engine.training as training
from accel_slowfast.data.dataset import init_worker
from accel_slowfast.engine.hooks import EvalHook, InterruptHook
from accel_slowfast.engine.training import train
from accel_slowfast.interrupts import EXIT_INTERRUPTED, EXIT_REQUEUE, InterruptedRun, deferred

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}


def _args(root, work_dir, *extra):
    return [f"--data_root={root}", f"--work_dir={work_dir}", "--clip_len=8", "--short_side=32", "--crop_size=32",
            "--test_crop_size=32", "--batch_size=4", "--num_workers=1", "--max_epochs=2", "--log_interval=1",
            "--eval_interval=1", "--checkpoint_interval=1", "--max_keep_ckpts=0", "--deterministic", *extra]


LAUNCHERS = {
    "python": [sys.executable, str(REPO / "train.py")],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                 str(REPO / "train.py")],
    # the command README gives for several processes under a scheduler (Kubernetes, SLURM one task per node)
    "launch": ["accel-slowfast", "launch", "--standalone", "--nproc_per_node=2", str(REPO / "train.py")],
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes=2",
                   str(REPO / "train.py")],
}


def _records(work_dir):
    lines = (Path(work_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "data_time")} for line in lines]


def _weights(work_dir, name="epoch_2"):
    return load_file(str(Path(work_dir) / "checkpoints" / name / "model.safetensors"))


def _assert_same_weights(ours, reference):
    assert ours.keys() == reference.keys()
    for key in ours:
        assert torch.equal(ours[key], reference[key]), key


@pytest.fixture(scope="module")
def straight(tiny_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("straight")
    subprocess.run([*LAUNCHERS["python"], *_args(tiny_root, work_dir)], check=True, capture_output=True, env=ENV,
                   timeout=600)
    return work_dir


@pytest.mark.slow
@pytest.mark.parametrize(("launcher", "signum", "code"), [("python", signal.SIGTERM, EXIT_INTERRUPTED),
                                                           ("python", signal.SIGUSR1, EXIT_REQUEUE),
                                                           ("torchrun", signal.SIGINT, None)])
def test_a_signal_to_the_process_group_saves_a_checkpoint_and_the_resumed_run_equals_a_straight_one(
        tiny_root, tmp_path, straight, launcher, signum, code):
    work_dir = tmp_path / "stopped"
    process = subprocess.Popen([*LAUNCHERS[launcher], *_args(tiny_root, work_dir)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    metrics, deadline = work_dir / "metrics.jsonl", time.time() + 300
    while not (metrics.exists() and metrics.read_text().count('"train"') >= 2):  # the loader worker is busy
        assert process.poll() is None and time.time() < deadline, "the run ended before the signal"
        time.sleep(0.02)
    os.killpg(process.pid, signum)  # as SLURM, Kubernetes or a terminal do: every process, workers included
    _, stderr = process.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert f"{name} after iteration" in stderr, stderr[-3000:]
    assert "Traceback" not in stderr.split(f"{name} after iteration")[0], stderr[-3000:]
    if code is not None:  # torchrun reports its own status
        assert process.returncode == code, stderr[-3000:]
    checkpoints = work_dir / "checkpoints"
    assert [p.name for p in checkpoints.iterdir() if p.name.startswith("iter_")], "no iteration checkpoint"
    assert not list(checkpoints.glob(".tmp_*"))

    resumed = subprocess.run([*LAUNCHERS[launcher], *_args(tiny_root, work_dir, "--resume_from=auto")],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _records(work_dir) == _records(straight)
    _assert_same_weights(_weights(work_dir), _weights(straight))


def _signal_at(iteration, monkeypatch, signum=signal.SIGTERM, during_eval=False):
    """Send ``signum`` to this process during train iteration ``iteration`` (1-based), or during
    the evaluation that follows the epoch that iteration ends."""
    calls = {"train": 0, "eval": 0}
    step = training.classification_step

    def step_with_signal(model, batch, train_mode):
        calls["train"] += 1
        if calls["train"] == iteration and not during_eval:
            os.kill(os.getpid(), signum)
        return step(model, batch, train_mode)

    score = EvalHook.after_train_epoch

    def evaluate_with_signal(hook, runner):
        if during_eval and runner.iter == iteration:
            os.kill(os.getpid(), signum)
        return score(hook, runner)

    check = InterruptHook._between_eval_batches

    def count_batches(hook, runner):
        calls["eval"] += 1
        return check(hook, runner)

    monkeypatch.setattr(training, "classification_step", step_with_signal)
    monkeypatch.setattr(EvalHook, "after_train_epoch", evaluate_with_signal)
    monkeypatch.setattr(InterruptHook, "_between_eval_batches", count_batches)
    return calls


def _reset_accelerate():
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


# The evaluation after precise BN and the EMA swap, with a loader worker: precise BN's forward
# passes draw on the main process's generators, which the stop's checkpoint must not keep.
EVAL_EXTRAS = dict(precise_bn_batches=2, ema=True, num_workers=1)


@pytest.mark.slow
@pytest.mark.parametrize(("iteration", "during_eval", "extras"),
                         [(5, False, {}), (5, True, {}), (5, True, EVAL_EXTRAS), (7, False, {})],
                         ids=["last-iteration-of-an-epoch", "during-evaluation",
                              "during-evaluation-after-precise-bn-and-ema", "mid-epoch"])
def test_a_signal_at_any_point_of_an_epoch_resumes_exactly(tiny_root, tmp_path, monkeypatch, iteration,
                                                            during_eval, extras):
    recipe = {"num_workers": 0, "max_epochs": 2, "checkpoint_interval": 2, **extras}  # 5 iterations an epoch
    reference = train(tiny_recipe(tiny_root, tmp_path / "straight", **recipe))
    expected = {k: v.clone() for k, v in reference.model.state_dict().items()}
    _reset_accelerate()

    calls = _signal_at(iteration, monkeypatch, during_eval=during_eval)
    with pytest.raises(InterruptedRun) as stop:
        train(tiny_recipe(tiny_root, tmp_path / "stopped", **recipe))
    assert stop.value.exit_code == EXIT_INTERRUPTED
    saved = [p.name for p in (tmp_path / "stopped" / "checkpoints").iterdir() if not p.name.startswith("best")]
    assert saved == [f"iter_{iteration}"]
    if during_eval:  # stopped after the evaluation's first batch, not at its end; no score was logged
        assert calls["eval"] == 1
        assert '"val"' not in (tmp_path / "stopped" / "metrics.jsonl").read_text()
    _reset_accelerate()
    monkeypatch.undo()

    resumed = train(tiny_recipe(tiny_root, tmp_path / "stopped", resume_from="auto", **recipe))
    _assert_same_weights(resumed.model.state_dict(), expected)
    assert _records(tmp_path / "stopped") == _records(tmp_path / "straight")


@pytest.mark.slow
def test_a_repeated_augmentation_run_stopped_mid_epoch_resumes_exactly(tiny_root, tmp_path, monkeypatch):
    # batch_size 4 = 2 videos x 2 clips, each at its own position: 10 iterations an epoch
    recipe = dict(num_workers=0, max_epochs=2, checkpoint_interval=2, num_repeats=2)
    reference = train(tiny_recipe(tiny_root, tmp_path / "straight", **recipe))
    expected = {k: v.clone() for k, v in reference.model.state_dict().items()}
    log = next((tmp_path / "straight").glob("train_*.log")).read_text()
    assert "10 iterations/epoch" in log
    assert ("Repeated augmentation: a batch holds 2 videos x 2 clips (2 positions and augmentations, one decode) = "
            "batch_size 4 clips per process") in log
    _reset_accelerate()

    _signal_at(13, monkeypatch)  # iteration 3 of epoch 2
    with pytest.raises(InterruptedRun):
        train(tiny_recipe(tiny_root, tmp_path / "stopped", **recipe))
    saved = [p.name for p in (tmp_path / "stopped" / "checkpoints").iterdir() if not p.name.startswith("best")]
    assert saved == ["iter_13"]
    _reset_accelerate()
    monkeypatch.undo()

    resumed = train(tiny_recipe(tiny_root, tmp_path / "stopped", resume_from="auto", **recipe))
    _assert_same_weights(resumed.model.state_dict(), expected)
    assert _records(tmp_path / "stopped") == _records(tmp_path / "straight")


class _Pids(torch.utils.data.Dataset):
    def __len__(self):
        return 1000

    def __getitem__(self, i):
        return os.getpid()


def test_loader_workers_ignore_stop_signals_from_anyone_but_their_parent():
    loader = torch.utils.data.DataLoader(_Pids(), batch_size=1, num_workers=1, worker_init_fn=init_worker,
                                         persistent_workers=True)
    batches = iter(loader)
    worker = int(next(batches))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # as a scheduler or a terminal sends them
        subprocess.run(["kill", f"-{signal.Signals(signum).name[3:]}", str(worker)], check=True)
    time.sleep(0.5)
    assert int(next(batches)) == worker  # alive and still loading
    os.kill(worker, signal.SIGTERM)  # its parent terminating it (what Python does to workers at exit)
    deadline = time.time() + 10
    while Path(f"/proc/{worker}").exists() and open(f"/proc/{worker}/stat").read().split()[2] != "Z":
        assert time.time() < deadline, "the worker ignored its parent's SIGTERM"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_process_with_shielded_persistent_workers_still_exits():
    script = ("import torch, os\n"
              "from accel_slowfast.data.dataset import init_worker\n"
              "class D(torch.utils.data.Dataset):\n"
              "    def __len__(self): return 100\n"
              "    def __getitem__(self, i): return i\n"
              "loader = torch.utils.data.DataLoader(D(), num_workers=2, worker_init_fn=init_worker,\n"
              "                                     persistent_workers=True)\n"
              "next(iter(loader))\n"
              "print('done')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 0 and "done" in result.stdout, result.stderr


def test_deferred_holds_a_signal_handler_back_until_the_block_ends():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with deferred(signal.SIGUSR2):
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.05)
            assert seen == []
        assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


FAKE_SRUN = """#!{python}
# srun for one task on this machine: the task in a session of its own (SLURM signals the step's
# processes, not the batch script), its pid in $FAKE_SRUN_PIDFILE, its exit status passed on.
import os, subprocess, sys
args = [a for a in sys.argv[1:] if not a.startswith("--")]
env = {{**os.environ, "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1"}}
task = subprocess.Popen(args, env=env, start_new_session=True)
open(os.environ["FAKE_SRUN_PIDFILE"], "w").write(str(task.pid))
sys.exit(task.wait())
"""
FAKE_SCONTROL = """#!/bin/bash
case "$1" in
    show) echo 127.0.0.1 ;;
    requeue) echo "requeue $2" >> "$FAKE_SCONTROL_LOG" ;;
esac
"""


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_slurm_script_requeues_after_a_sigusr1_checkpoint_and_the_requeued_job_resumes_exactly(
        tiny_root, tmp_path, straight):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN.format(python=sys.executable)), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work_dir = tmp_path / "job"
    recipe = tmp_path / "tiny.yaml"  # the same settings as _args, as a recipe file
    recipe.write_text("\n".join(arg[2:].replace("=", ": ", 1) if "=" in arg else f"{arg[2:]}: true"
                                for arg in _args(tiny_root, work_dir)) + "\n")
    env = {**ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable, "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": "node001", "MASTER_PORT": str(_free_port()),
           "FAKE_SRUN_PIDFILE": str(tmp_path / "task.pid"), "FAKE_SCONTROL_LOG": str(tmp_path / "scontrol.log")}
    command = ["bash", str(REPO / "recipes/slurm/train_multi_node.sh"), str(recipe)]

    job = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics, deadline = work_dir / "metrics.jsonl", time.time() + 300
    while not (metrics.exists() and metrics.read_text().count('"train"') >= 2):
        assert job.poll() is None and time.time() < deadline, "the job ended before the signal"
        time.sleep(0.02)
    os.killpg(int((tmp_path / "task.pid").read_text()), signal.SIGUSR1)  # --signal=USR1@90
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == EXIT_REQUEUE, stderr[-3000:]
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"

    requeued = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "Resumed from" in requeued.stderr
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"  # not requeued again
    assert _records(work_dir) == _records(straight)
    _assert_same_weights(_weights(work_dir), _weights(straight))


@pytest.mark.slow
def test_ctrl_c_saves_a_resumable_checkpoint_and_resume_equals_a_straight_run(tiny_root, tmp_path):
    def args(work_dir, *extra):
        return [sys.executable, str(REPO / "train.py"), f"--data_root={tiny_root}", f"--work_dir={work_dir}",
                "--clip_len=8", "--short_side=32", "--crop_size=32", "--test_crop_size=32", "--batch_size=4",
                "--num_workers=0", "--max_epochs=2", "--log_interval=2", "--checkpoint_interval=1",
                "--deterministic", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(args(tmp_path / "straight"), check=True, capture_output=True, env=env, timeout=300)
    process = subprocess.Popen(args(tmp_path / "stopped"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, text=True)
    metrics = tmp_path / "stopped" / "metrics.jsonl"
    deadline = time.time() + 300
    while not (metrics.exists() and metrics.read_text().count('"train"') >= 1):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "resume with --resume_from=auto" in stderr
    saved = sorted(p.name for p in (tmp_path / "stopped" / "checkpoints").glob("iter_*"))
    assert saved, "Ctrl-C must leave an iteration checkpoint"
    subprocess.run(args(tmp_path / "stopped", "--resume_from=auto"), check=True, capture_output=True, env=env,
                   timeout=300)

    def records(work_dir):
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "data_time")}
                for line in (work_dir / "metrics.jsonl").read_text().splitlines()]

    assert records(tmp_path / "stopped") == records(tmp_path / "straight")


def _wait_for_training(process, work_dir, lines=2):
    """Until ``lines`` train records are logged (the loader worker is then busy)."""
    metrics, deadline = work_dir / "metrics.jsonl", time.time() + 300
    while not (metrics.exists() and metrics.read_text().count('"train"') >= lines):
        assert process.poll() is None and time.time() < deadline, "the run ended before the signal"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def straight_two(tiny_root, tmp_path_factory):
    """The run of ``_args`` on two processes, uninterrupted."""
    work_dir = tmp_path_factory.mktemp("straight_two")
    subprocess.run([*LAUNCHERS["launch"], *_args(tiny_root, work_dir)], check=True, capture_output=True, env=ENV,
                   timeout=600)
    return work_dir


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGUSR1, EXIT_REQUEUE), (signal.SIGTERM, EXIT_INTERRUPTED),
                                              (signal.SIGINT, EXIT_INTERRUPTED)], ids=["SIGUSR1", "SIGTERM", "SIGINT"])
def test_accel_slowfast_launch_passes_a_group_signal_to_every_rank_and_exits_with_their_status(
        tiny_root, tmp_path, straight_two, signum, code):
    work_dir = tmp_path / "stopped"
    process = subprocess.Popen([*LAUNCHERS["launch"], *_args(tiny_root, work_dir)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    _wait_for_training(process, work_dir)
    os.killpg(process.pid, signum)  # as SLURM, Kubernetes or a terminal: the ranks are in sessions of their own
    _, stderr = process.communicate(timeout=300)
    name = signal.Signals(signum).name
    assert process.returncode == code, stderr[-3000:]
    assert stderr.count(f"stopped: {name} after iteration") == 2, stderr[-3000:]  # both ranks
    assert "Traceback" not in stderr, stderr[-3000:]
    saved = [p.name for p in (work_dir / "checkpoints").iterdir()]
    assert len(saved) == 1 and saved[0].startswith("iter_"), saved

    resumed = subprocess.run([*LAUNCHERS["launch"], *_args(tiny_root, work_dir, "--resume_from=auto")],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "started by torchrun" not in resumed.stderr
    assert _records(work_dir) == _records(straight_two)
    _assert_same_weights(_weights(work_dir), _weights(straight_two))


@pytest.mark.slow
def test_under_accelerate_launch_with_two_processes_a_sigterm_saves_and_the_run_warns_about_its_launcher(
        tiny_root, tmp_path):
    work_dir = tmp_path / "stopped"
    process = subprocess.Popen([*LAUNCHERS["accelerate"], *_args(tiny_root, work_dir)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    _wait_for_training(process, work_dir)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert stderr.count("stopped: SIGTERM after iteration") == 2, stderr[-3000:]
    assert "started by torchrun or `accelerate launch`" in stderr and "accel-slowfast launch" in stderr
    # Accelerate's own status (128 + SIGTERM); SIGUSR1 kills it at once: hence the warning
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]


@pytest.mark.slow
def test_a_second_signal_during_the_shutdown_keeps_the_first_ones_exit_status(tiny_root, tmp_path):
    work_dir = tmp_path / "stopped"
    process = subprocess.Popen([*LAUNCHERS["python"], *_args(tiny_root, work_dir)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    _wait_for_training(process, work_dir)
    os.killpg(process.pid, signal.SIGUSR1)
    lines = []
    for line in process.stderr:  # the run has saved and is exiting
        lines.append(line)
        if line.startswith("stopped: SIGUSR1"):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # a scheduler's repeat, a launcher stopping the ranks left
    lines.append(process.communicate(timeout=120)[1])
    assert process.returncode == EXIT_REQUEUE, "".join(lines)[-3000:]


def test_launch_refuses_restarts_in_one_line():
    result = subprocess.run(["accel-slowfast", "launch", "--max_restarts=1", "--nproc_per_node=2", "train.py"],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert one_line_error(result).startswith("error: launch: --max_restarts=1 would restart ranks")


def test_launch_leaves_the_stop_signals_to_itself():
    from accel_slowfast.commands.launch import torchrun_args

    assert torchrun_args(["--nproc_per_node=2", "train.py"]).signals_to_handle == "SIGHUP,SIGQUIT"
    assert torchrun_args(["--signals_to_handle=SIGUSR1", "train.py"]).signals_to_handle == "SIGHUP"
