"""Every preset, whatever its backbone, goes through the same commands: train -> test -> export ->
load_model -> predict, and transformers' from_pretrained and pipeline (offline, without accel_slowfast) give our
logits and predict's top classes, on the tiny dataset. Adding a backbone touches the presets, its model module and
the transformers export (hf_model.py, hf_export.py); this test keeps the data, the hooks and the commands free of
any backbone."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import tiny_recipe

from accel_slowfast.commands.predict import predict
from accel_slowfast.engine.testing import run_test
from accel_slowfast.engine.training import train
from accel_slowfast.export.hub import export_model, load_model
from accel_slowfast.models.presets import BACKBONES, PRESETS

# transformers alone, as a user without accel_slowfast: the export (argv[1])'s logits on clip.pt into logits.pt,
# and the pipeline's top 3 on a video (argv[2]) into top.json
FROM_PRETRAINED = """
import json, sys, torch
from transformers import AutoModelForVideoClassification, pipeline
model = AutoModelForVideoClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(torch.load("clip.pt", weights_only=True).transpose(1, 2)).logits, "logits.pt")
top = pipeline("video-classification", model=sys.argv[1], trust_remote_code=True)(sys.argv[2], top_k=3)
json.dump(top, open("top.json", "w"))
assert not [name for name in sys.modules if name.startswith("accel_slowfast")]
"""
QUICK = {"slowfast_tiny", "x3d_xs"}  # ~25 s each on 2 CPU cores; the others (3.8-63 M parameters) 25-115 s


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in QUICK else [pytest.mark.slow]) for n in PRESETS])
def test_every_preset_trains_tests_exports_loads_and_predicts(name, tiny_root, tmp_path):
    # the shortest clip the preset takes (alpha frames, at least 4) at 32 px; one epoch of 5 iterations, one view
    recipe = tiny_recipe(tiny_root, tmp_path / "run", model=name, clip_len=max(4, PRESETS[name].alpha), max_epochs=1,
                         num_clips=1, num_crops=1, optimizer="sgd")
    train(recipe)
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_1"
    metrics = run_test(recipe, checkpoint, tmp_path / "test")
    assert metrics["num_videos"] == 10 and metrics["num_failed"] == 0

    out = export_model(checkpoint, tmp_path / "export")
    card = (out / "README.md").read_text()
    backbone, builder = BACKBONES[PRESETS[name].backbone]
    assert f"A {backbone} video classifier (the `{name}` preset, built with pytorchvideo's `{builder}`)" in card
    exported, config = load_model(out)
    trained_model, _ = load_model(checkpoint)
    clip = torch.randint(0, 256, (2, 3, recipe.clip_len, 32, 32), dtype=torch.uint8)  # (B, C, T, H, W)
    with torch.no_grad():
        assert torch.equal(exported(clip), trained_model(clip))
        ours = exported(clip)
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    top = predict(exported, config, video, top_k=3)
    assert len(top) == 3 and {label for label, _ in top} <= set(config["classes"])

    torch.save(clip, tmp_path / "clip.pt")  # uint8: transformers' model normalizes it as ours does
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", FROM_PRETRAINED, str(out), str(video)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt", weights_only=True), ours, rtol=0, atol=1e-5)
    theirs = json.loads((tmp_path / "top.json").read_text())  # predict's view: the recipe's one clip, one crop
    assert [row["label"] for row in theirs] == [label for label, _ in top]
    torch.testing.assert_close([row["score"] for row in theirs], [prob for _, prob in top], rtol=0, atol=1e-5)
