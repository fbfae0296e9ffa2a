"""What happens when a checkpoint cannot be written, or a work_dir cannot hold one. (A non-finite
loss: ``engine/faults.py``; signals: ``interrupts.py``.)

- A checkpoint that cannot be written (a full disk, a quota) stops the run with
  ``CheckpointWriteError``: one line naming the work_dir, the room it needs and the last good
  checkpoint; the partial folder is removed and earlier checkpoints stay intact.
- An unwritable ``work_dir`` or a disk without room for a checkpoint fails before training.

Every process must agree on a failure (a write, a non-finite loss) or the processes part ways and
hang: ``any_process`` is the one collective that decides.
"""

import errno
import shutil
from pathlib import Path

import torch

from accel_slowfast.checkpointing.manifest import find_resume_checkpoint
from accel_slowfast.checkpointing.names import CHECKPOINT_DIR
from accel_slowfast.errors import RecipeError


def any_process(accelerator, flag: bool) -> bool:
    """True if ``flag`` is set on any process (a collective: every process must call it)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag)], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item())


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the message says why and what is left."""


def write_failure(error: BaseException | None, target: Path, work_dir: Path, needed: int) -> CheckpointWriteError:
    """The one-line error for a failed write of ``target`` (``error`` is None on the processes
    whose own part succeeded). A full disk is told from the errno anywhere in the exception
    chain (torch's zip writer reports it only as "unexpected pos ..."), or from the room left."""
    free = shutil.disk_usage(work_dir).free
    chain, cause = [], error
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    full = free < needed or any(getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) for e in chain)
    last = find_resume_checkpoint(work_dir)
    last_good = f"the last good checkpoint is {last}" if last else "there is no earlier checkpoint"
    if full:
        return CheckpointWriteError(
            f"no space left to save {target.name} in work_dir {work_dir}: it needs about {needed / 1e6:.1f} MB "
            f"({needed} bytes), {free / 1e6:.1f} MB are free; the partial save was removed and {last_good}. Free "
            "some space (or lower max_keep_ckpts), then resume with --resume_from=auto")
    if error is None:
        what = "another process failed to write its part"
    else:
        lines = str(error).strip().splitlines()
        what = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return CheckpointWriteError(f"could not save {target} ({what}); the partial save was removed and {last_good}")


def check_work_dir(work_dir: Path, checkpoint_bytes: int) -> None:
    """Fail before training when ``work_dir`` cannot be written or cannot hold two checkpoints."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise RecipeError(f"work_dir {work_dir} is not writable ({error}); choose another --work_dir") from None
    checkpoints = work_dir / CHECKPOINT_DIR
    if checkpoints.exists() and not checkpoints.is_dir():
        raise RecipeError(f"{checkpoints} is a file, but checkpoints are saved in a folder of that name; move the "
                          "file away or choose another --work_dir")
    free = shutil.disk_usage(work_dir).free
    if free < 2 * checkpoint_bytes:
        raise RecipeError(f"work_dir {work_dir} has {free / 2**20:.0f} MiB free but a checkpoint needs about "
                          f"{checkpoint_bytes / 2**20:.0f} MiB (two are written while one is replaced); "
                          "free some space or choose another --work_dir")


def state_bytes(runner, with_optimizer: bool = True) -> int:
    """Bytes of the model (and optimizer) tensors: about what one checkpoint takes on disk."""
    tensors = list(runner.accelerator.unwrap_model(runner.model).state_dict().values())
    if with_optimizer:
        tensors += [v for state in runner.optimizer.state_dict()["state"].values() for v in state.values()]
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))
