"""hf_model.py / hf_export.py: an export opened by transformers alone (from_pretrained, pipeline), offline,
equal to our model; the previous export layout still loads; the README's transformers block runs as written."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_transcode import write_video

from accel_slowfast.commands.predict import predict
from accel_slowfast.export.hf_model import SlowFastConfig, SlowFastForVideoClassification
from accel_slowfast.export.hub import export_model, load_model, run_config
from accel_slowfast.models.builders import build_model
from accel_slowfast.models.presets import PRESETS

README = Path(__file__).parents[1] / "README.md"

# Runs the README's block in a fresh interpreter, as a user without accel_slowfast would, then hands back what it
# computed; accel_slowfast must not be imported by anything the folder's code pulls in.
HARNESS = """
import json, sys, torch
namespace = {}
exec(open("block.py").read(), namespace)
torch.save({"pixel_values_videos": namespace["inputs"]["pixel_values_videos"], "logits": namespace["logits"]},
           "out.pt")
json.dump({"pipeline": namespace["classify"]("clip.avi", top_k=5),
           "ours_imported": sorted(m for m in sys.modules if m.startswith("accel_slowfast"))}, open("out.json", "w"))
"""


def readme_block() -> str:
    """The python block of the README that calls ``pipeline(``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(block for block in blocks if "pipeline(" in block)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    return export_model(trained[1], tmp_path_factory.mktemp("hf") / "exported" / "x")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """40 frames of 64x48 noise: resized (short side 48 -> 32) and cropped, unlike the 32-px synthetic set."""
    frames = np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("hf_video") / "clip.avi", frames)


@pytest.fixture(scope="module")
def user_run(exported, clip) -> dict:
    """The README's block run offline in a fresh process from a folder holding exported/x and clip.avi."""
    work = exported.parents[1]
    (work / "block.py").write_text(readme_block())
    (work / "clip.avi").write_bytes(clip.read_bytes())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(work / "modules"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", HARNESS], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {**json.loads((work / "out.json").read_text()), **torch.load(work / "out.pt", weights_only=True)}


def test_the_folder_holds_what_transformers_reads(exported, trained):
    assert {p.name for p in exported.iterdir()} == {"config.json", "model.safetensors", "README.md", "hf_model.py",
                                                    "video_preprocessor_config.json"}
    config = json.loads((exported / "config.json").read_text())
    classes = run_config(trained[1])["classes"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(classes)}
    assert config["label2id"] == {name: i for i, name in enumerate(classes)}
    assert config["auto_map"] == {"AutoConfig": "hf_model.SlowFastConfig",
                                  "AutoModelForVideoClassification": "hf_model.SlowFastForVideoClassification"}
    assert config["model_type"] == "accel_slowfast" and config["accel_slowfast"]["model"] == "slowfast_tiny"
    processor = json.loads((exported / "video_preprocessor_config.json").read_text())
    assert processor["auto_map"] == {"AutoVideoProcessor": "hf_model.SlowFastVideoProcessor"}
    assert (processor["num_frames"], processor["frame_interval"], processor["size"], processor["crop_size"]) == (
        8, 2, {"shortest_edge": 32}, {"height": 32, "width": 32})
    tree = ast.parse((exported / "hf_model.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math", "warnings", "av", "numpy", "torch", "transformers", "pytorchvideo"}


def test_from_pretrained_offline_gives_our_logits(user_run, exported):
    """In a process that never imported accel_slowfast: the same logits as ours on the same tensor."""
    assert user_run["ours_imported"] == []
    model, _ = load_model(exported)
    pixels = user_run["pixel_values_videos"]  # (1, T, C, H, W) float, normalized
    assert pixels.shape == (1, 8, 3, 32, 32) and pixels.dtype == torch.float32
    with torch.no_grad():
        ours = model(pixels.transpose(1, 2))
    torch.testing.assert_close(user_run["logits"], ours, rtol=0, atol=1e-5)


def test_the_pipeline_gives_predict_with_one_view(user_run, exported, clip):
    """The pipeline's centre clip, resize and crop are predict's with num_clips=1, num_crops=1."""
    model, config = load_model(exported)
    ours = predict(model, {**config, "num_clips": 1, "num_crops": 1}, clip, top_k=5)
    theirs = user_run["pipeline"]
    assert [row["label"] for row in theirs] == [name for name, _ in ours]
    np.testing.assert_allclose([row["score"] for row in theirs], [prob for _, prob in ours], rtol=0, atol=1e-5)


def test_the_processor_samples_the_centre_clip_as_our_dataset(exported):
    """The shipped sampling formula against ClipDataset's (uniform, one clip), short videos looping included."""
    from transformers import AutoVideoProcessor
    from transformers.video_utils import VideoMetadata

    from accel_slowfast.data import ClipDataset, VideoIndex

    processor = AutoVideoProcessor.from_pretrained(exported, trust_remote_code=True)
    dataset = ClipDataset(VideoIndex([], ["a"]), clip_len=8, frame_interval=3, transforms=[],
                          clip_sampling="uniform", num_clips=1)
    for total in (5, 23, 24, 25, 100):
        indices = processor.sample_frames(VideoMetadata(total_num_frames=total), num_frames=8, frame_interval=3)
        np.testing.assert_array_equal(indices, dataset.frame_indices(total, np.random.default_rng(0))[0])


def test_registered_classes_open_the_folder_without_remote_code(exported):
    from transformers import AutoConfig, AutoModelForVideoClassification

    assert type(AutoConfig.from_pretrained(exported)) is SlowFastConfig
    model = AutoModelForVideoClassification.from_pretrained(exported)
    assert type(model) is SlowFastForVideoClassification and model.config.id2label[0] == "MoveDown"
    ours, _ = load_model(exported)
    clip = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():  # uint8 in: both normalize it themselves
        torch.testing.assert_close(model.eval()(clip.transpose(1, 2)).logits, ours(clip), rtol=0, atol=1e-5)


def test_the_previous_export_layout_still_loads(trained, exported, tmp_path):
    """config.json + model.safetensors + README.md as export wrote them before the transformers files."""
    state, config = load_model(exported)[0].state_dict(), run_config(trained[1])
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(config, indent=2))
    save_file({key: value.contiguous() for key, value in state.items()}, str(old / "model.safetensors"))
    (old / "README.md").write_text("# slowfast_tiny")
    model, loaded = load_model(old)
    assert loaded == config and not model.training
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_keeps_its_parameter_names_under_the_prefix(name):
    from accel_slowfast.export.transformers_files import hf_config

    classes = ["a", "b", "c"]
    config = {"model": name, "classes": classes, "clip_len": PRESETS[name].clip_len, "mean": [0, 0, 0],
              "std": [1, 1, 1]}
    with torch.device("meta"):  # shapes only: the R101 presets build in a blink
        theirs = SlowFastForVideoClassification(hf_config(config)).state_dict()
        ours = build_model(name, len(classes)).state_dict()
    assert {key: value.shape for key, value in theirs.items()} == {
        f"slowfast.{key}": value.shape for key, value in ours.items()}


def test_our_checkpoints_load_into_the_transformers_class(trained, exported):
    """Its network is pytorchvideo's under one prefix, so load_from's layouts (ours, pytorchvideo's zoo,
    mmaction2 converted) load into ``.slowfast`` as they are."""
    from accel_slowfast.checkpointing.load import load_weights
    from accel_slowfast.export.transformers_files import hf_config

    model = SlowFastForVideoClassification(hf_config(run_config(trained[1]))).eval()
    assert load_weights(model.slowfast, trained[1]) == {"missing": [], "unexpected": [], "shape_mismatch": []}
    ours, _ = load_model(exported)
    clip = torch.randint(0, 256, (1, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(model(clip.transpose(1, 2)).logits, ours(clip))
