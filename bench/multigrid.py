"""Multigrid vs the standard schedule: training wall time per epoch and the final top-1, same recipe otherwise.

    OMP_NUM_THREADS=1 python bench/multigrid.py                 # slowfast_tiny, synthetic set, CPU (minutes)
    python bench/multigrid.py --tiny                             # seconds: what tests/test_bench.py runs
    python bench/multigrid.py --model slowfast_r50_4x16 --clip-len 32 --crop-size 224 --batch-size 8   # a GPU

Both runs train the same recipe with the step schedule (``lr_steps``); the multigrid run adds
``multigrid_long_cycle`` and ``multigrid_short_cycle`` and, as PySlowFast's ``EPOCH_FACTOR``,
trains ``--epoch-factor`` (1.5) times the epochs, its ``lr_steps`` stretched alike. The time of
an epoch is the sum of its iterations' ``time`` in ``metrics.jsonl`` (``log_interval: 1``), so
evaluation is not in it; "step" leaves out the wait for data (``time - data_time``): on a CPU the
decoding of an epoch's clips, the same number in both runs, can hide what the smaller shapes save.
Top-1 is the last evaluation's, at the base shape, on the held-out videos.
"""

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from accel_slowfast.data.synthetic import SyntheticSpec, ensure_synthetic
from accel_slowfast.engine.training import train
from accel_slowfast.multigrid import MultigridSchedule
from accel_slowfast.recipe.recipe import Recipe


def epoch_times(work_dir: Path) -> dict[int, tuple[float, float, int]]:
    """``{epoch: (training seconds, of them not waiting for data, iterations)}`` from a run's
    per-iteration train records."""
    times: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for line in (work_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["mode"] == "train":
            times[record["epoch"]].append((record["time"], record["time"] - record["data_time"]))
    return {epoch: (sum(t for t, _ in values), sum(s for _, s in values), len(values))
            for epoch, values in sorted(times.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run on a tiny generated set")
    parser.add_argument("--model", default="slowfast_tiny")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr-steps", type=int, nargs="+", default=[6, 10])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=56)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--epoch-factor", type=float, default=1.5, help="the multigrid run's epochs / the standard's")
    parser.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw",
                        help="sgd (PySlowFast's, which the linear LR scaling is for) or adamw (the tiny recipe's)")
    parser.add_argument("--lr", type=float, default=4e-3, help="at the base shape; multigrid scales it by the batch")
    args = parser.parse_args()
    base = dict(model=args.model, max_epochs=args.epochs, lr_policy="step", lr_steps=args.lr_steps,
                optimizer=args.optimizer, lr=args.lr,
                batch_size=args.batch_size, clip_len=args.clip_len, crop_size=args.crop_size,
                short_side=args.crop_size, test_crop_size=args.crop_size, num_workers=args.num_workers,
                log_interval=1, eval_interval=args.epochs, checkpoint_interval=args.epochs, seed=0)
    if args.tiny:
        spec = SyntheticSpec(width=40, height=32, num_frames=20, num_groups=3, clips_per_group=2, test_groups=(1,))
        base.update(data_root=str(ensure_synthetic(spec, cache_dir=tempfile.mkdtemp())), max_epochs=3, lr_steps=[2],
                    batch_size=1, clip_len=16, crop_size=32, short_side=32, test_crop_size=32, num_workers=0,
                    eval_interval=3, checkpoint_interval=3)
    stretch = {key: [round(args.epoch_factor * e) for e in base["lr_steps"]] if key == "lr_steps" else
               round(args.epoch_factor * base[key]) for key in ("max_epochs", "lr_steps", "eval_interval",
                                                                "checkpoint_interval")}
    runs = {"standard": {}, "multigrid": dict(multigrid_long_cycle=True, multigrid_short_cycle=True, **stretch)}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, keys in runs.items():
            recipe = Recipe(**{**base, **keys}, work_dir=f"{folder}/{name}")
            runner = train(recipe)
            results[name] = (epoch_times(Path(recipe.work_dir)), runner.meta["last_eval"]["top1_acc"])
    print(f"\n{args.model if not args.tiny else 'slowfast_tiny (--tiny)'}, {args.optimizer} lr {args.lr:g}, "
          f"batch {base['batch_size']} x "
          f"{base['clip_len']} frames x {base['crop_size']}²; standard: {base['max_epochs']} epochs, lr_steps "
          f"{base['lr_steps']}; multigrid: {stretch['max_epochs']} epochs, lr_steps {stretch['lr_steps']}")
    print("multigrid schedule:\n" + MultigridSchedule(Recipe(**{**base, **runs["multigrid"]})).table())
    print(f"\n{'epoch':>5} {'standard: s, step s (iters)':>28} {'multigrid: s, step s (iters)':>28}")
    standard, multigrid = results["standard"][0], results["multigrid"][0]
    for epoch in sorted(set(standard) | set(multigrid)):
        cells = [f"{times[epoch][0]:>13.2f} {times[epoch][1]:>7.2f} ({times[epoch][2]:>4})" if epoch in times
                 else f"{'':>28}" for times in (standard, multigrid)]
        print(f"{epoch:>5} {cells[0]} {cells[1]}")
    totals = {name: [sum(row[i] for row in times.values()) for i in (0, 1)] for name, (times, _) in results.items()}
    means = [f"{total / len(results[name][0]):>13.2f} {step / len(results[name][0]):>7.2f} {'':>6}"
             for name, (total, step) in totals.items()]
    print(f"{'mean':>5} {means[0]} {means[1]}")
    (total, step), (mg_total, mg_step) = totals["standard"], totals["multigrid"]
    print(f"total training time: standard {total:.1f} s, multigrid {mg_total:.1f} s ({total / mg_total:.2f}x faster); "
          f"steps alone: {step:.1f} s vs {mg_step:.1f} s ({step / mg_step:.2f}x)")
    print(f"final top1_acc: standard {results['standard'][1]:.4f}, multigrid {results['multigrid'][1]:.4f}")


if __name__ == "__main__":
    main()
