"""mmcv's ``EMAHook``: an exponential moving average of the weights, swapped in for evaluation and
checkpoints (priority NORMAL: after the runner's optimizer step, before ``EvalHook``, LOW)."""

from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel


class EMAHook:
    """mmcv's ``EMAHook``: an exponential moving average of every parameter.

    After train iteration ``i`` (0-based, global) with ``i % interval == 0``::

        m = min(momentum ** interval, (1 + i) / (warm_up + i))
        ema = (1 - m) * ema + m * param

    As in mmcv, ``after_train_epoch`` swaps the averaged weights into the model, so evaluation, the
    best checkpoint and the epoch checkpoint see them, and ``before_train_epoch`` swaps the trained
    weights back. After the run the model holds the averaged weights. The hook is checkpointable
    (``state_dict``/``load_state_dict``): ``CheckpointWriter`` saves it with every checkpoint and
    ``resume.load_checkpoint`` restores it; ``swapped`` records which copy the model holds, so a
    resumed run continues exactly. Only parameters are averaged (BatchNorm statistics are the model's), as in mmcv.
    """

    priority = "NORMAL"  # after_train_iter hooks run after the runner stepped; before EvalHook (LOW)

    def __init__(self, model: torch.nn.Module, momentum: float = 2.0e-4, interval: int = 1, warm_up: int = 100):
        if not 0 < momentum < 1 or interval < 1 or warm_up < 1:
            raise ValueError(f"EMAHook needs 0 < momentum < 1, interval >= 1, warm_up >= 1; got {momentum}, "
                             f"{interval}, {warm_up}")
        self.momentum, self.interval, self.warm_up = momentum**interval, interval, warm_up
        self.params = dict(extract_model_from_parallel(model).named_parameters())
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        self.swapped = False  # True between after_train_epoch and the next before_train_epoch

    def after_train_iter(self, runner) -> None:
        step = runner.iter
        if step % self.interval:
            return
        momentum = min(self.momentum, (1 + step) / (self.warm_up + step))
        with torch.no_grad():
            for name, param in self.params.items():
                self.shadow[name].mul_(1 - momentum).add_(param.detach(), alpha=momentum)

    def after_train_epoch(self, runner) -> None:
        self._swap()

    def before_train_epoch(self, runner) -> None:
        if self.swapped:
            self._swap()

    @torch.no_grad()
    def _swap(self) -> None:
        for name, param in self.params.items():
            trained = param.detach().clone()
            param.copy_(self.shadow[name])
            self.shadow[name].copy_(trained)
        self.swapped = not self.swapped

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "swapped": self.swapped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("the checkpoint's EMA weights do not match the model's parameters")
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        self.swapped = bool(state["swapped"])
