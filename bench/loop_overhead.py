"""What the Runner and its hooks cost per step, against a minimal hand-written Accelerate loop.

Both loops train the same model (same initial weights) on the same batches held in memory, with
SGD and L2 gradient clipping at 40:

    (a) hand loop: forward, cross-entropy, ``accelerator.backward``, ``clip_grad_norm_``, step,
        ``zero_grad`` -- nothing else
    (b) ``Runner`` with its train iteration as ``accel_slowfast.engine.training.train`` builds it:
        LR schedule (cosine + linear warm-up), NaN check, backward, clipping, step -- and the hooks
        of the loop itself, ``IterTimerHook`` and ``LoggerHook`` (text log, ``metrics.jsonl`` in a
        temporary work_dir, progress bar) -- ``classification_step`` as the train step

Rows take turns in rounds (a noisy neighbour slows both alike); the medians are printed with
their ratio (target: (b)/(a) <= 1.03). Run from the repository root::

    python bench/loop_overhead.py [--iters 20] [--rounds 5] [--batch-size 4] [--tiny]
"""

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import send_to_device

import accel_slowfast  # noqa: F401  (first: the pytorchvideo import shim)
from accel_slowfast.engine.accelerator import setup_text_logger
from accel_slowfast.engine.hooks import IterTimerHook, LoggerHook
from accel_slowfast.engine.runner import Runner
from accel_slowfast.engine.schedule import build_lr_schedule
from accel_slowfast.engine.training import classification_step
from accel_slowfast.models.builders import PRESETS, build_model
from accel_slowfast.recipe.recipe import Recipe


def make_batches(count: int, batch_size: int, clip_len: int, size: int, num_classes: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        clips = torch.randn(batch_size, 3, clip_len, size, size, generator=generator)  # (B, C, T, H, W)
        batches.append({"video": clips,
                        "label": torch.randint(num_classes, (batch_size,), generator=generator),
                        "replaced": torch.zeros(batch_size, dtype=torch.bool)})
    return batches


def hand_loop(model, optimizer, accelerator: Accelerator, batches: list[dict], grad_clip: float) -> None:
    model.train()
    for batch in batches:
        loss = F.cross_entropy(model(batch["video"]).float(), batch["label"])
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad()


def build_runner(model, optimizer, accelerator: Accelerator, recipe: Recipe, work_dir: Path) -> Runner:
    logger = setup_text_logger(work_dir, accelerator.is_main_process)
    logger.setLevel(logging.WARNING)  # the file and console handlers still format nothing we do not log
    runner = Runner(model, optimizer, accelerator, work_dir, classification_step, logger,
                    lr_schedule=build_lr_schedule(recipe.schedule_args, recipe.lr), grad_clip=recipe.grad_clip)
    runner.register_hook(IterTimerHook())
    runner.register_hook(LoggerHook(recipe.log_interval))
    return runner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="slowfast_tiny", choices=sorted(PRESETS))
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--iters", type=int, default=20, help="iterations per round (one runner epoch)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-interval", type=int, default=5, help="LoggerHook interval (recipe default 5)")
    parser.add_argument("--tiny", action="store_true", help="8 frames at 32 px, 2 iterations x 1 round")
    args = parser.parse_args(argv)
    clip_len = PRESETS[args.model].clip_len
    if args.tiny:
        args.model, args.size, args.iters, args.rounds, clip_len = "slowfast_tiny", 32, 2, 1, 8
    recipe = Recipe(model=args.model, clip_len=clip_len, optimizer="sgd", lr=0.01, grad_clip=40.0,
                    max_epochs=1000, log_interval=args.log_interval)

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(0)
    model_a = build_model(args.model, 101)
    model_b = build_model(args.model, 101)
    model_b.load_state_dict(model_a.state_dict())
    optimizers = [torch.optim.SGD(m.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=1e-4)
                  for m in (model_a, model_b)]
    model_a, opt_a, model_b, opt_b = accelerator.prepare(model_a, optimizers[0], model_b, optimizers[1])
    batches = make_batches(args.iters, args.batch_size, clip_len, args.size, 101)
    batches = [send_to_device(batch, accelerator.device) for batch in batches]

    with tempfile.TemporaryDirectory() as work_dir:
        runner = build_runner(model_b, opt_b, accelerator, recipe, Path(work_dir))
        rows = {
            "(a) hand-written Accelerate loop": lambda: hand_loop(model_a, opt_a, accelerator, batches, 40.0),
            "(b) Runner step + timer/logger hooks": lambda: runner.run(
                {"train": batches}, [("train", 1)], max_epochs=runner.epoch + 1),
        }
        for run in rows.values():  # warm-up round: allocator, first log file, tqdm
            run()
        times = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, run in rows.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) / args.iters)
        logged = sum(1 for _ in open(Path(work_dir) / "metrics.jsonl"))

    print(f"{args.model}, {clip_len} frames x {args.size}² px, batch {args.batch_size}, SGD + clip 40, "
          f"{args.iters} iterations x {args.rounds} rounds (alternating), torch threads {torch.get_num_threads()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; runner wrote {logged} log records")
    print(f"{'loop':<46} {'median ms/step':>15} {'min':>8} {'max':>8}")
    for name, values in times.items():
        print(f"{name:<46} {1000 * statistics.median(values):>15.1f} {1000 * min(values):>8.1f} "
              f"{1000 * max(values):>8.1f}")
    a, b = (statistics.median(values) for values in times.values())
    fastest_a, fastest_b = (min(values) for values in times.values())
    print(f"(b)/(a) = {b / a:.3f} on medians, {fastest_b / fastest_a:.3f} on minima (target <= 1.03)")


if __name__ == "__main__":
    main()
