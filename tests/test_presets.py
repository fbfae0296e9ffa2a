"""Every preset, whatever its backbone, goes through the same commands: train -> test -> export ->
load_model -> predict, on the tiny dataset. Adding a backbone touches the presets and its model module;
this test keeps the data, the hooks and the commands free of any backbone."""

import pytest
import torch
from conftest import tiny_recipe

from accel_slowfast.evaluate_checkpoint import run_test
from accel_slowfast.export import export_model, load_model
from accel_slowfast.predict import predict
from accel_slowfast.presets import BACKBONES, PRESETS
from accel_slowfast.training import train

QUICK = {"slowfast_tiny", "x3d_xs"}  # ~15 s each on 2 CPU cores; the others (3.8-63 M parameters) 25-115 s


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
    top = predict(exported, config, next((tiny_root / "MoveUp").glob("*.avi")), top_k=3)
    assert len(top) == 3 and {label for label, _ in top} <= set(config["classes"])
