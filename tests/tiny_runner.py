"""A tiny runner (Linear or Linear + BatchNorm, SGD) and batches, shared by the hook tests."""

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from accel_slowfast.engine.runner import Runner


def step(model, batch, train_mode):
    loss = F.mse_loss(model(batch["x"]), batch["y"])
    return {"loss": loss, "log_vars": {"loss": loss.detach()}, "num_samples": len(batch["x"])}


def forward(model, batch):
    return model(batch["x"])


def batches(n, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(size, 3, generator=g) * 2 + 1, "y": torch.randn(size, 1, generator=g)} for _ in range(n)]


def bn_model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 1))


def runner(work_dir, model_type=None, accelerator=None, lr=0.0):
    """A runner of a Linear (or ``model_type()``) model; ``lr`` 0 leaves the weights as they are."""
    accelerator = accelerator or Accelerator(cpu=True)
    torch.manual_seed(0)
    model = model_type() if model_type else torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model, optimizer = accelerator.prepare(model, optimizer)
    return Runner(model, optimizer, accelerator, work_dir, step)


def params(model):
    return [p.detach().clone() for p in model.parameters()]


class Probe:
    """Snapshots of the model's parameters at one event, from a chosen priority."""

    def __init__(self, event, priority):
        self.priority, self.seen = priority, []
        setattr(self, event, lambda runner: self.seen.append(params(runner.model)))
