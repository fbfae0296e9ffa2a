"""onnx_export.py: export --format onnx of the tiny trained checkpoint, its parity check and refusal,
the file's dynamic batch and metadata, the missing extra, and the README's onnxruntime code verbatim."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from accel_slowfast.export import onnx_file as onnx_export
from accel_slowfast.export.hub import export_model, load_model

REPO = Path(__file__).parents[1]
MISSING = [name for name in onnx_export.EXTRA if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: pip install -e '.[onnx]'")
PARITY_LINE = re.compile(r"parity: onnxruntime \(CPU\) vs PyTorch on 3 clips of a decoded video: largest logit "
                         r"difference (\S+) \((\S+) relative to the largest logit \S+; at most 0.0001 allowed\)")


def export_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accel_slowfast", "export", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def onnx_file(trained, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The tiny trained checkpoint exported to ONNX by the command, as a user runs it."""
    out = tmp_path_factory.mktemp("onnx") / "exported"
    return out / "model.onnx", export_command(str(trained[1]), str(out), "--format", "onnx")


@needs_onnx
def test_export_onnx_writes_a_file_onnxruntime_runs_as_pytorch_at_any_batch(trained, onnx_file):
    import onnxruntime

    path, result = onnx_file
    assert result.returncode == 0, result.stderr[-3000:]
    parity, wrote = result.stdout.splitlines()[-2:]
    figures = PARITY_LINE.fullmatch(parity)
    assert figures and float(figures[2]) <= 1e-4, parity
    assert wrote == f"wrote {path}: opset 18, input uint8 (batch, 3, T, H, W) normalized inside, dynamic batch"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # nothing staged is left

    model, config = load_model(trained[1])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (clip_input,) = session.get_inputs()
    assert clip_input.type == "tensor(uint8)" and clip_input.shape == ["batch", 3, 8, 32, 32]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["opset"] == "18" and meta["parity"] == parity and json.loads(meta["classes"]) == config["classes"]
    assert (meta["clip_len"], meta["frame_interval"], meta["crop_size"]) == ("8", "2", "32")
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 3):
        clips = torch.randint(0, 256, (batch, 3, 8, 32, 32), dtype=torch.uint8, generator=generator)
        (logits,) = session.run(None, {"clip": clips.numpy()})
        with torch.no_grad():
            expected = model(clips).numpy()
        assert logits.shape == (batch, len(config["classes"]))
        assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max()


@needs_onnx
@pytest.mark.slow  # a second export, about 10 s
def test_export_onnx_beside_an_export_folder_replaces_no_file_unasked(trained, tmp_path, capsys):
    from accel_slowfast.commands import export

    out = export_model(trained[1], tmp_path / "exported")
    written = sorted(p.name for p in out.iterdir())
    model, config = load_model(out)
    path, parity = onnx_export.export_onnx(model, config, out)  # the folder's config: the same clip settings
    assert sorted(p.name for p in out.iterdir()) == sorted([*written, "model.onnx"])
    assert parity.relative <= 1e-4 and parity.views == 3
    with pytest.raises(SystemExit) as exit_status:
        export.main([str(trained[1]), str(out), "--format", "onnx"])
    assert exit_status.value.code == 2 and capsys.readouterr().err == (
        f"error: export: {path} exists; choose another folder, or pass --overwrite to replace it\n")


@needs_onnx
def test_export_onnx_is_refused_when_onnxruntime_disagrees(trained, tmp_path, monkeypatch, capsys):
    from accel_slowfast.commands import export

    real = onnx_export.check_parity

    def perturbed(model, path, clips):  # as if the graph computed something else: logits off by 1 %
        found = real(model, path, clips)
        return onnx_export.Parity(found.max_abs + 0.01 * found.max_logit, found.max_logit, found.views)

    monkeypatch.setattr(onnx_export, "check_parity", perturbed)
    out = tmp_path / "refused"
    out.mkdir()
    (out / "model.onnx").write_text("the earlier export")
    with pytest.raises(SystemExit) as exit_status:
        export.main([str(trained[1]), str(out), "--format", "onnx", "--overwrite"])
    assert exit_status.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(
        r"error: export: onnxruntime's logits differ from PyTorch's by \S+ \(1\.0\de-02 relative, over the 0\.0001 "
        rf"allowed\) on 3 decoded clips; {re.escape(str(out / 'model.onnx'))} not written", err[0]), err
    assert [p.name for p in out.iterdir()] == ["model.onnx"]  # kept as it was, nothing staged left
    assert (out / "model.onnx").read_text() == "the earlier export"


def test_export_onnx_without_the_extra_names_it(trained, tmp_path, monkeypatch, capsys):
    from accel_slowfast.commands import export

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(SystemExit) as exit_status:
        export.main([str(trained[1]), str(tmp_path / "x"), "--format", "onnx"])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err == ("error: export --format onnx needs onnxruntime: pip install "
                                       "'accel_slowfast[onnx]' (or pip install -e '.[onnx]' in a checkout)\n")
    assert not (tmp_path / "x").exists()


@needs_onnx
def test_readme_deploying_code_runs_verbatim_on_a_tiny_export(trained, onnx_file, tmp_path, monkeypatch, capsys):
    """The README's onnxruntime block, in a folder holding exported/x/model.onnx and clip.avi."""
    from accel_slowfast.data.synthetic import SyntheticSpec, render, write_video

    section = (REPO / "README.md").read_text().split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "exported" / "x").mkdir(parents=True)
    (tmp_path / "exported" / "x" / "model.onnx").symlink_to(onnx_file[0])
    spec = SyntheticSpec()
    rng = np.random.default_rng(1)
    background = rng.integers(90, 166, size=(spec.height, spec.width, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.avi", render("MoveUp", background, rng, spec), spec.fps)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md (Deploying)", "exec"), scope)  # noqa: S102 - the README's own code

    model, config = load_model(trained[1])
    assert scope["clip"].dtype == np.uint8 and scope["clip"].shape == (1, 3, 8, 32, 32)
    with torch.no_grad():
        expected = model(torch.from_numpy(scope["clip"])).numpy()
    assert np.abs(scope["logits"] - expected).max() <= 1e-4 * np.abs(expected).max()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[0] in config["classes"] and len(printed) == 5
