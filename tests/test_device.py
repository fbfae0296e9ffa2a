"""The device's hooks (engine/hooks/device.py): emptying the CUDA cache, the profiler's trace."""

import json
from types import SimpleNamespace

import tiny_runner as tiny
import torch

from accel_slowfast.engine.hooks import EmptyCacheHook, ProfilerHook


# --- empty cache, profiler, SyncBatchNorm ---------------------------------------------------------------------
def test_empty_cache_only_on_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    for device, after_iter, expected in (("cpu", True, 0), ("cuda", False, 2), ("cuda", True, 4)):
        calls.clear()
        runner = SimpleNamespace(accelerator=SimpleNamespace(device=torch.device(device)))
        hook = EmptyCacheHook(after_iter=after_iter)
        for event in ("after_train_iter", "after_train_epoch", "after_val_iter", "after_val_epoch"):
            getattr(hook, event)(runner)
        assert len(calls) == expected, (device, after_iter)


def test_profiler_writes_a_chrome_trace_of_its_window(tmp_path):
    runner = tiny.runner(tmp_path, lr=0.1)
    hook = ProfilerHook(wait=1, warmup=1, active=2)
    runner.register_hook(hook)
    runner.run({"train": tiny.batches(3)}, [("train", 1)], max_epochs=2)
    assert hook.trace_path == tmp_path / "profiler" / "trace_iter3-4.json"
    events = json.loads(hook.trace_path.read_text())["traceEvents"]
    assert any("aten::" in str(e.get("name", "")) for e in events)

    # a run shorter than the window writes what it recorded
    short = ProfilerHook(wait=0, warmup=1, active=10)
    runner = tiny.runner(tmp_path / "short")
    runner.register_hook(short)
    runner.run({"train": tiny.batches(3)}, [("train", 1)], max_epochs=1)
    assert short.trace_path.name == "trace_iter2-3.json" and short.trace_path.exists()
