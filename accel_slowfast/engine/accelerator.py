"""What every command sets up the same way (train, test, predict, data check): the Accelerator,
the seeds, the text log.

Precision follows Accelerate's own precedence unless the recipe sets it: a recipe's
``mixed_precision`` (``no``, ``fp16``, ``bf16``) wins; left empty, the launcher decides
(``accelerate launch --mixed_precision bf16``, ``accelerate config``, ``ACCELERATE_MIXED_PRECISION``).

    accelerate launch --mixed_precision bf16 train.py      # bf16: the recipe is silent
    accelerate launch train.py --mixed_precision=no        # fp32: the recipe wins

The recipe keeps what it left open (``recipe.yaml`` says ``mixed_precision: ''``, so a later
command's launcher decides again); the precision in force is in the run's log line (``describe``),
its trackers' configuration and ``test_metrics.json``.

Several processes on CPUs: ``accel-slowfast launch --nproc_per_node=N train.py`` (or torchrun);
on a machine without an accelerator each rank joins the group over gloo. ``accelerate launch
--cpu --num_processes N train.py`` starts one process where MPI does not start the others
(Accelerate's multi-CPU mode needs ``--mpirun_hostfile``): that process hands over to
``accel-slowfast launch --nproc_per_node=N`` on the same arguments, saying so in one line.
"""

import logging
import os
import sys
from pathlib import Path

import psutil
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed

from accel_slowfast.checkpointing.names import log_file_name
from accel_slowfast.engine.trackers import build_trackers
from accel_slowfast.progress import bars_enabled, in_notebook
from accel_slowfast.recipe.run import LoggingArgs, RuntimeArgs


def build_accelerator(runtime: RuntimeArgs | None = None, logs: LoggingArgs | None = None,
                      gradient_accumulation_steps: int = 1) -> Accelerator:
    """The run's ``Accelerator``: precision (see above), gradient accumulation, the trackers and
    bars of ``logs``, and a seeded sampler; no ``runtime`` builds one for inference (precision
    from Accelerate)."""
    start_the_processes_accelerate_did_not()
    # Without cpu=True a rank that torchrun started on a machine with no accelerator runs alone
    # (Accelerate joins CPU ranks into a group only when told the run is on CPUs).
    cpu = not torch.accelerator.is_available()
    if runtime is None:
        return Accelerator(cpu=cpu)
    trackers = []
    if logs is not None:
        bars_enabled(logs.progress_bar)
        trackers = build_trackers(logs, runtime.work_dir)  # all = wandb + tensorboard, not every installed one
    return Accelerator(
        cpu=cpu,
        mixed_precision=runtime.mixed_precision or None,  # None: Accelerate's flag/config/environment decides
        gradient_accumulation_steps=gradient_accumulation_steps,
        log_with=trackers or None,
        project_dir=runtime.work_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=runtime.seed),
    )


WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def accelerate_launch_args(command: list[str]):
    """The parsed arguments of an ``accelerate launch`` command line, or None for any other command."""
    names = [Path(word).name for word in command[:4]]
    if "accelerate.commands.launch" in names:  # python -m accelerate.commands.launch ...
        start = names.index("accelerate.commands.launch") + 1
    elif "accelerate" in names and "launch" in names:
        start = names.index("launch") + 1
    else:
        return None
    from accelerate.commands.launch import launch_command_parser

    return launch_command_parser().parse_known_args(command[start:])[0]


def start_the_processes_accelerate_did_not() -> None:
    """Under ``accelerate launch --num_processes N`` that started this process alone (its simple
    launcher, taken where there are no GPUs to launch on and no MPI), replace this process by
    ``accel-slowfast launch --standalone --nproc_per_node=N`` on the same script and arguments:
    the run gets the N processes asked for (and the stop signals that launcher passes on),
    rather than training as one."""
    if any(os.environ.get(name) for name in WORLD_SIZE_VARIABLES) or "ACCELERATE_DYNAMO_BACKEND" not in os.environ:
        return  # a rank of a group, or not started by accelerate launch
    try:
        args = accelerate_launch_args(psutil.Process().parent().cmdline())
    except (psutil.Error, AttributeError):  # no parent to read (AttributeError: it has exited)
        return
    if args is None or (args.num_processes or 1) <= 1:
        return
    command = ["--standalone", f"--nproc_per_node={args.num_processes}", *(["-m"] if args.module else []),
               args.training_script, *args.training_script_args]
    print(f"accelerate launch started one process for --num_processes {args.num_processes} (on CPUs it starts "
          f"several only through MPI); starting them with: accel-slowfast launch {' '.join(command)}",
          file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "accel_slowfast", "launch", *command])


def describe(accelerator: Accelerator, runtime: RuntimeArgs) -> str:
    """One log line: processes, device, the precision in force and where it came from."""
    source = "the recipe" if runtime.mixed_precision else "Accelerate (launcher flag, accelerate config or environment)"
    return (f"Run: {accelerator.num_processes} process(es) on {accelerator.device.type}, mixed precision: "
            f"{accelerator.mixed_precision} (from {source}), gradient accumulation: "
            f"{accelerator.gradient_accumulation_steps}, seed: {runtime.seed}")


def seed_everything(runtime: RuntimeArgs, accelerator: Accelerator) -> None:
    """Seed python/numpy/torch; with ``deterministic``, deterministic kernels (warn-only on CUDA,
    where 3-D pooling's backward has no deterministic kernel)."""
    set_seed(runtime.seed)
    if runtime.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=accelerator.device.type == "cuda")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def setup_text_logger(work_dir: Path, is_main_process: bool, prefix: str = "train") -> logging.Logger:
    """``accel_slowfast`` logger: console + ``<work_dir>/<prefix>_<time>.log`` on the main process.

    In a notebook the console shows only warnings and the run's summary (records flagged
    ``summary``, ``hooks/logs.py``) beside the progress widget: some 60 records a run, the hook
    table among them, would bury the cell's result. The file keeps every record.
    """
    logger = logging.getLogger("accel_slowfast")
    logger.setLevel(logging.INFO if is_main_process else logging.ERROR)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s - %(levelname)s - %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if in_notebook():  # a notebook's cell shows the bar, warnings and the summary; the file has it all
        handlers[0].addFilter(lambda record: record.levelno >= logging.WARNING or getattr(record, "summary", False))
    if is_main_process:
        handlers.append(logging.FileHandler(Path(work_dir) / log_file_name(prefix)))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
