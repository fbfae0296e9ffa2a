"""A non-finite loss: ``NonFiniteLossError`` stops the run naming the iteration and the last good
checkpoint (``skip_nonfinite_loss``: the runner skips the optimizer step instead). Every
process must agree that a step is skipped or the run stops, so the check is a collective
(``any_process``). (A checkpoint that cannot be written: ``checkpointing/faults.py``.)
"""

import torch


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite."""


def any_process(accelerator, flag: bool) -> bool:
    """True if ``flag`` is set on any process (a collective: every process must call it)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag)], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item())
