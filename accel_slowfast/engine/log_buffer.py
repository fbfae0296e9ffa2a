"""mmcv's ``LogBuffer``: a history of logged values, averaged for each log line.

Values may be tensors still on the device: they are only turned into floats when averaged,
once per log interval, so logging adds no device synchronisation to every iteration.
"""

from collections import defaultdict

import torch


class LogBuffer:
    """``update`` every iteration; ``average(n)`` fills ``output`` for the loggers."""

    def __init__(self):
        self.history: dict[str, list[tuple[float | torch.Tensor, int]]] = defaultdict(list)
        self.output: dict[str, float] = {}

    def update(self, values: dict[str, float | torch.Tensor], count: int = 1) -> None:
        for key, value in values.items():
            self.history[key].append((value.detach() if torch.is_tensor(value) else value, count))

    def average(self, n: int = 0) -> None:
        """Average the last ``n`` entries of every key (all when ``n`` is 0), weighted by count."""
        for key, entries in self.history.items():
            recent = entries[-n:] if n else entries
            if recent:
                total = sum(count for _, count in recent)
                self.output[key] = float(sum(float(value) * count for value, count in recent) / total)

    def clear(self) -> None:
        self.history.clear()
        self.clear_output()

    def clear_output(self) -> None:
        self.output.clear()
