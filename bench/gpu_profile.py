"""Where a SlowFast training step's time goes: convolution kernels vs the many small ops, and the
slow vs the fast pathway.

One ``torch.profiler`` window over the training step of ``bench/gpu_throughput.py`` (bf16 +
channels_last by default, one batch held on the device). Printed: the step's device time by
kind of kernel (convolutions, BatchNorm, element-wise, layout copies, reductions, the optimizer,
other), the forward pass by part of the network (slow pathway, fast pathway, lateral fusions,
head; forward only: the backward kernels run outside those ranges), and the slowest kernels.
On a CPU the same tables come from the operators' CPU time. Run from the repository root::

    python bench/gpu_profile.py                          # SlowFast R50 4x16, 224 px, batch 32, bf16+channels_last
    python bench/gpu_profile.py --row fp32 --batch-size 8
    python bench/gpu_profile.py --tiny                   # slowfast_tiny on the CPU: a smoke run
"""

import argparse
import contextlib
import logging
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

import accel_slowfast  # noqa: F401  (first: the pytorchvideo import shim)
from accel_slowfast.models.builders import PRESETS, apply_fast_path, build_model

# kind of kernel (or CPU operator) -> name fragments, matched in this order
KINDS = (
    ("convolution", ("conv", "cudnn", "implicit_gemm", "xmma", "wgrad", "dgrad", "fprop", "winograd")),
    ("batchnorm", ("batch_norm", "batchnorm", "bn_fw", "bn_bw")),
    ("layout copy", ("copy", "transpose", "nchw", "nhwc", "permute", "contiguous")),
    ("reduction/pool", ("reduce", "pool", "mean", "sum")),
    ("optimizer", ("multi_tensor", "foreach", "sgd", "clip_grad", "norm")),
    ("element-wise", ("elementwise", "vectorized", "relu", "add", "mul", "threshold", "fill", "where", "cat")),
)
PARTS = ("slow pathway", "fast pathway", "lateral fusion", "head")


def kind_of(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, fragments in KINDS if any(f in lowered for f in fragments)), "other")


def label_parts(model) -> None:
    """Wrap each part's forward in a profiler range: ``blocks[0..4]`` hold both pathways
    (``multipathway_blocks[0]`` slow, ``[1]`` fast) and the fusion after them; the rest is the head."""

    def ranged(module, name):
        stack = []
        module.register_forward_pre_hook(lambda m, args: stack.append(_enter(name)))
        module.register_forward_hook(lambda m, args, out: stack.pop().__exit__(None, None, None))

    for stage in model.blocks[:5]:
        ranged(stage.multipathway_blocks[0], "slow pathway")
        ranged(stage.multipathway_blocks[1], "fast pathway")
        if stage.multipathway_fusion is not None:
            ranged(stage.multipathway_fusion, "lateral fusion")
    for block in model.blocks[5:]:
        ranged(block, "head")


def _enter(name: str) -> contextlib.AbstractContextManager:
    context = record_function(name)
    context.__enter__()
    return context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="slowfast_r50_4x16", choices=sorted(PRESETS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--row", default="bf16+channels_last", choices=["fp32", "bf16", "bf16+channels_last"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="profiled steps")
    parser.add_argument("--top", type=int, default=12, help="slowest kernels listed")
    parser.add_argument("--tiny", action="store_true", help="slowfast_tiny, 8 frames at 32 px, batch 2, CPU-sized")
    args = parser.parse_args(argv)
    if args.tiny:
        args.model, args.size, args.batch_size, args.warmup, args.steps = "slowfast_tiny", 32, 2, 1, 2
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16, channels_last = args.row != "fp32", args.row.endswith("channels_last")

    torch.manual_seed(0)
    preset = PRESETS[args.model]
    clip_len = 8 if args.tiny else preset.clip_len
    model = apply_fast_path(build_model(args.model, 101).to(device).train(), channels_last=channels_last,
                            compile=False)
    label_parts(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    clips = torch.randn(args.batch_size, 3, clip_len, args.size, args.size, device=device)  # (B, C, T, H, W)
    label = torch.randint(101, (args.batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(clips).float(), label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    on_gpu = device.type == "cuda"
    events = prof.key_averages()
    # kernels (GPU) or leaf operators (CPU: their self time), then the labelled forward ranges
    leaves = [e for e in events if (e.device_type == torch.autograd.DeviceType.CUDA if on_gpu
                                    else e.key.startswith("aten::") and e.self_cpu_time_total > 0)]
    time_of = (lambda e: e.self_device_time_total) if on_gpu else (lambda e: e.self_cpu_time_total)
    by_kind: dict[str, float] = defaultdict(float)
    for event in leaves:
        by_kind[kind_of(event.key)] += time_of(event)
    total = sum(by_kind.values())
    unit = "device" if on_gpu else "CPU"
    name = torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model}, {clip_len} x {args.size}² px, batch {args.batch_size}, {args.row}; {name}; "
          f"{args.steps} profiled steps, {total / args.steps / 1e3:.1f} ms of {unit} time a step")
    print(f"\n{'kind of ' + ('kernel' if on_gpu else 'operator'):<26} {'ms/step':>9} {'share':>7}")
    for kind, spent in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"{kind:<26} {spent / args.steps / 1e3:>9.2f} {spent / total:>7.1%}")
    ranges = {e.key: (e.device_time_total if on_gpu else e.cpu_time_total) for e in events if e.key in PARTS}
    forward = sum(ranges.values()) or 1.0
    print(f"\n{'forward, by part':<26} {'ms/step':>9} {'share':>7}")
    for part in PARTS:
        print(f"{part:<26} {ranges.get(part, 0.0) / args.steps / 1e3:>9.2f} {ranges.get(part, 0.0) / forward:>7.1%}")
    print(f"\n{'slowest':<90} {'ms/step':>9} {'calls/step':>11}")
    for event in sorted(leaves, key=lambda e: -time_of(e))[: args.top]:
        print(f"{event.key[:90]:<90} {time_of(event) / args.steps / 1e3:>9.3f} {event.count / args.steps:>11.1f}")


if __name__ == "__main__":
    main()
