"""Training throughput of SlowFast on one accelerator: fp32, bf16, bf16 + channels_last, bf16 + compile, all three.

Each row trains the same model (fresh weights, same seed) on one batch held on the device, the
way ``accel_slowfast.engine.training`` does: forward, cross-entropy, backward, L2 gradient clipping at
40, SGD step. bf16 is autocast (what Accelerate's ``mixed_precision="bf16"`` does: no grad scaler);
``channels_last`` and ``compile`` go through ``accel_slowfast.models.builders.apply_fast_path``, the code
the recipe keys of the same names run. Printed per row: training clips/s (median step time),
peak memory, and model FLOP utilisation (MFU)::

    MFU = 3 x forward FLOPs per clip x clips/s / device peak      (backward ~ 2 x forward)

Forward FLOPs come from ``accel_slowfast.models.builders.model_report``: fvcore counts multiply-adds (the
"GFLOPs" papers publish: SlowFast R50 4x16 has 27.8 G of them at 224 px), and each is two
floating-point operations, the unit of a device's peak, so MFU uses 2 x fvcore's count (55.6
GFLOPs forward at 224 px). The ``MFU (MACs)`` column shows the half that fvcore's count alone
would give, to compare with figures computed that way. The peak is the dense bf16 tensor-core
figure of the card, or ``--peak-tflops``. fp32 rows are measured against the
TF32 tensor-core peak, since cuDNN runs fp32 convolutions in TF32 by default
(``torch.backends.cudnn.allow_tf32``). Run from the repository root::

    python bench/gpu_throughput.py                         # SlowFast R50 4x16, 224 px, batch 8
    python bench/gpu_throughput.py --batch-size 16 --steps 30
    python bench/gpu_throughput.py --tiny                  # slowfast_tiny, 32 px, CPU-sized smoke run

On a machine without a GPU it runs on the CPU (peak unknown: MFU is printed as "-").
"""

import argparse
import logging
import resource
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import accel_slowfast  # noqa: F401  (first: the pytorchvideo import shim)
from accel_slowfast.models.builders import PRESETS, apply_fast_path, build_model, model_report

# Dense (no sparsity) peak TFLOP/s as (bf16, TF32) tensor-core figures from NVIDIA's data sheets,
# matched against torch.cuda.get_device_name() in this order; other cards take --peak-tflops.
PEAK_TFLOPS = {
    "H200": (989.0, 494.5),
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.5),  # SXM
    "A100": (312.0, 156.0),
}


@dataclass(frozen=True)
class Row:
    name: str
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False


ROWS = (
    Row("fp32"),
    Row("bf16", bf16=True),
    Row("bf16+channels_last", bf16=True, channels_last=True),
    Row("bf16+compile", bf16=True, compile=True),
    Row("bf16+channels_last+compile", bf16=True, channels_last=True, compile=True),
)


def device_peak(device: torch.device, override: float | None) -> tuple[float, float] | None:
    """(bf16, TF32) peak TFLOP/s of ``device``, or None when unknown."""
    if override:
        return override, override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def peak_memory_gib(device: torch.device) -> float:
    """Peak allocated device memory since the last reset; on CPU the process's peak RSS (which
    never goes down, so later CPU rows show at least the earlier rows' peak)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_row(row: Row, args, device: torch.device) -> dict[str, float]:
    """Median step time and peak memory of ``row``'s training step."""
    torch.manual_seed(0)
    model = build_model(args.model, args.num_classes).to(device).train()
    model = apply_fast_path(model, channels_last=row.channels_last, compile=row.compile)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    video = torch.randn(args.batch_size, 3, args.clip_len, args.size, args.size, device=device)  # (B, C, T, H, W)
    label = torch.randint(args.num_classes, (args.batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=row.bf16):
            loss = F.cross_entropy(model(video).float(), label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(args.warmup):  # cuDNN autotuning, allocator growth; compile happens here
        step()
    synchronize(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    result = {"step_s": statistics.median(times), "warmup_s": warmup_s, "memory_gib": peak_memory_gib(device)}
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="slowfast_r50_4x16", choices=sorted(PRESETS))
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels")
    parser.add_argument("--clip-len", type=int, default=None, help="frames per clip (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-classes", type=int, default=101)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile needs a few)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--rows", nargs="+", choices=[row.name for row in ROWS],
                        help="rows to run (default: all; --tiny on a CPU leaves out the compile rows)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, if not in the table")
    parser.add_argument("--tiny", action="store_true",
                        help="slowfast_tiny, 8 frames at 32 px, batch 2, 1 warm-up + 2 steps: a smoke run for CPUs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.model, args.size, args.clip_len, args.batch_size, args.warmup, args.steps = "slowfast_tiny", 32, 8, 2, 1, 2
    args.clip_len = args.clip_len or PRESETS[args.model].clip_len
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.backends.cudnn.benchmark = True

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.rows is None:  # Inductor's CPU compile of SlowFast's training step takes minutes: not a smoke run
        args.rows = [row.name for row in ROWS if not (row.compile and args.tiny and device.type == "cpu")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    peak = device_peak(device, args.peak_tflops)
    report = model_report(build_model(args.model, args.num_classes), args.clip_len, args.size)
    gflops = report["gflops_per_view"]
    print(f"{args.model}, {args.clip_len} frames x {args.size}² px, batch {args.batch_size}, "
          f"{report['gmacs_per_view']:.2f} GMACs = {gflops:.2f} GFLOPs forward per clip (x3 per training step); "
          f"device: {name}; "
          f"peak {'unknown' if peak is None else f'{peak[0]:.0f} TFLOP/s bf16, {peak[1]:.1f} TF32'}; "
          f"torch {torch.__version__}; {args.warmup} warm-up + {args.steps} timed steps per row")
    print(f"{'row':<26} {'step (s)':>9} {'clips/s':>9} {'TFLOP/s':>8} {'MFU':>6} {'MFU (MACs)':>11} "
          f"{'peak mem (GiB)':>15} {'warm-up (s)':>12}")
    for row in (row for row in ROWS if row.name in args.rows):
        result = run_row(row, args, device)
        clips_s = args.batch_size / result["step_s"]
        tflops = 3 * gflops * clips_s / 1e3  # true FLOP/s: 2 per multiply-add
        utilisation = None if peak is None else tflops / peak[0 if row.bf16 else 1]
        mfu, mfu_macs = ("-", "-") if utilisation is None else (f"{utilisation:.1%}", f"{utilisation / 2:.1%}")
        print(f"{row.name:<26} {result['step_s']:>9.4f} {clips_s:>9.2f} {tflops:>8.3g} {mfu:>6} {mfu_macs:>11} "
              f"{result['memory_gib']:>15.2f} {result['warmup_s']:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
