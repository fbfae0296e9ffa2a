"""A non-finite loss: ``NonFiniteLossError`` stops the run naming the iteration and the last good
checkpoint (``skip_nonfinite_loss``: the runner skips the optimizer step instead). Every
process must agree that a step is skipped or the run stops, so the check is a collective
(``checkpointing/faults.any_process``, which checkpoint writes agree with too).
"""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite."""

