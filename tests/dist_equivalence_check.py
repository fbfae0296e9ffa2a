"""Run by tests/test_distributed.py: the Runner with its hooks, on N processes x batch (B / N).

    python tests/dist_equivalence_check.py OUT.pt 8
    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node 2 \
        tests/dist_equivalence_check.py OUT.pt 8
"""

import sys

import torch
import torch.nn.functional as F
from accelerate import Accelerator

import accel_slowfast  # noqa: F401
from accel_slowfast.engine.runner import Runner
from accel_slowfast.engine.schedule import build_lr_schedule
from accel_slowfast.recipe.recipe import Recipe


class Samples(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(16, 3, 4, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"x": self.x[i], "label": self.y[i]}


def step(model, batch, train_mode):
    loss = F.cross_entropy(model(batch["x"]), batch["label"])
    return {"loss": loss, "log_vars": {"loss": loss.detach()}, "num_samples": len(batch["label"])}


def main(out: str, total_batch: str) -> None:
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    # no batch-dependent normalization: per-process batches then give the same gradient
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(Samples(), batch_size=int(total_batch) // accelerator.num_processes)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    recipe = Recipe(lr=0.5, lr_policy="cosine", warmup="linear", warmup_epochs=1, warmup_ratio=0.1)
    runner = Runner(model, optimizer, accelerator, "/tmp", step,
                    lr_schedule=build_lr_schedule(recipe.schedule_args, recipe.lr), grad_clip=1.0)
    lrs = []
    runner.register_hook(lambda r, event: lrs.append(r.optimizer.param_groups[0]["lr"])
                         if event == "after_train_iter" else None)
    runner.run({"train": loader}, [("train", 1)], max_epochs=3)
    if accelerator.is_main_process:
        torch.save({"state": accelerator.unwrap_model(model).state_dict(), "lrs": lrs}, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
