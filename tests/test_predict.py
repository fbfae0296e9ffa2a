"""predict.py: the top classes of one video, averaged over its views exactly as the test command averages them."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from accelerate import Accelerator
from conftest import one_line_error

from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE
from accel_slowfast.commands.predict import predict
from accel_slowfast.data import VideoIndex, VideoRecord
from accel_slowfast.data.builders import build_loader, build_test_dataset
from accel_slowfast.evaluation.metrics import score_videos, softmax
from accel_slowfast.export.hub import export_model, load_model


@pytest.mark.slow
def test_predict_from_an_export_a_checkpoint_and_the_command(trained, tmp_path, tiny_root):
    _, checkpoint = trained
    out = export_model(checkpoint, tmp_path / "export")
    model, config = load_model(out)
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    top = predict(model, config, video)
    assert [name for name, _ in top] and len(top) == 5 and sorted(top, key=lambda t: -t[1]) == top
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    from_checkpoint = predict(*load_model(checkpoint), video)
    assert [n for n, _ in from_checkpoint] == [n for n, _ in top]
    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "predict", str(video), f"--checkpoint={out}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5 and top[0][0] in result.stdout.splitlines()[0]


@pytest.mark.parametrize("average_clips", ["prob", "score"])
def test_predict_averages_the_views_as_the_test_command_does(trained, tmp_path, tiny_root, average_clips):
    """predict's probabilities are the test command's per-video scores for the same views
    (``score``: their softmax, the mean logits shown as probabilities)."""
    recipe, checkpoint = trained
    recipe = dataclasses.replace(recipe, work_dir=str(tmp_path), average_clips=average_clips)
    model, config = load_model(checkpoint)
    config = {**config, "average_clips": average_clips}
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    index = VideoIndex([VideoRecord(video, config["classes"].index("MoveUp"))], config["classes"])
    accelerator = Accelerator(cpu=True)
    dataset = build_test_dataset(recipe.data_args, recipe.evaluation_args, recipe.short_side, index, accelerator,
                                 seed=recipe.seed, bad_video_log=tmp_path / BAD_VIDEOS_FILE)
    loader = build_loader(dataset, recipe.data_args, accelerator, batch_size=recipe.batch_size, seed=recipe.seed,
                          train=False)
    (scores,) = score_videos(model, loader, accelerator, average_clips).scores  # what run_test scores this video
    expected = scores if average_clips == "prob" else softmax(scores)
    predicted = dict(predict(model, config, video, top_k=len(config["classes"])))
    assert len(dataset) == 6 and len(predicted) == 5
    np.testing.assert_allclose([predicted[name] for name in config["classes"]], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_an_unknown_hub_id_offline_is_one_line(tiny_root, tmp_path):
    video = next((tiny_root / "MoveUp").glob("*.avi"))
    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "predict", str(video),
                             "--checkpoint=nobody/nothing"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert "nobody/nothing is not a local path, and the Hugging Face Hub did not give it" in one_line_error(result)


def _first_keyframe_garbled(source, target) -> None:
    """A copy of an AVI whose header and packet table read fine but whose first frame's data is noise:
    the probe passes, the reference decoder then fails (the fast one conceals it)."""
    data = bytearray(source.read_bytes())
    chunk = data.find(b"00dc", data.find(b"movi"))
    size = int.from_bytes(data[chunk + 4:chunk + 8], "little")
    data[chunk + 12:chunk + 8 + size] = np.random.default_rng(1).integers(0, 255, size - 4, np.uint8).tobytes()
    target.write_bytes(bytes(data))


def test_predict_names_a_video_that_fails_to_decode_and_its_error(trained, tmp_path, tiny_root):
    """It said '21 videos in a row failed to decode' about a single video."""
    _, checkpoint = trained
    model, config = load_model(checkpoint)
    bad = tmp_path / "bad.avi"
    _first_keyframe_garbled(next((tiny_root / "MoveUp").glob("*.avi")), bad)
    with pytest.raises(RuntimeError) as raised:
        predict(model, dict(config, decoder="pyav"), bad)
    message = str(raised.value)
    assert message.startswith(f"cannot decode {bad}: InvalidDataError") and "in a row" not in message
