import pytest
import torch
from pytorchvideo.models.hub.slowfast import slowfast_16x8_r101_50_50, slowfast_r101
from pytorchvideo.models.slowfast import create_slowfast

from accel_slowfast.models.builders import PRESETS, SlowFast, apply_fast_path, build_model, count_parameters
from accel_slowfast.recipe.recipe import Recipe, RecipeError

SLOW_PRESETS = {"slowfast_r101_8x8", "slowfast_16x8_r101_50_50"}  # R101 forwards take 4-17 s on 2 CPU cores


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_PRESETS else [])
                                  for n in sorted(PRESETS)])
def test_every_preset_classifies_any_crop_and_clip_length(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7).eval()
    for frames, size in ((PRESETS[name].clip_len, 64), (2 * PRESETS[name].alpha, 48)):
        clip = torch.randint(0, 256, (1, 3, frames, size, size), dtype=torch.uint8)  # (B, C, T, H, W)
        with torch.no_grad():
            assert model(clip).shape == (1, 7)


def _pathways_outside(model: SlowFast, clip: torch.Tensor) -> torch.Tensor:
    """The logits of the pathways packed outside the model, as the data pipeline did before the model took
    one clip: slow = every alpha-th uint8 frame from the first, each pathway normalized on its own, then
    pytorchvideo's multipathway blocks on ``[slow, fast]`` (``Net`` would re-initialise the weights)."""
    x = [model.normalize(clip[:, :, :: model.alpha]), model.normalize(clip)]
    for block in model.blocks:
        x = block(x)
    return x


@pytest.mark.parametrize("name", ["slowfast_tiny", "slowfast_r50_4x16_mmaction2"])
def test_one_clip_in_gives_the_logits_of_the_pathways_packed_outside_bitwise(name):
    torch.manual_seed(0)
    overrides = dict(model_depth=18, stem_dim_outs=(8, 1)) if name != "slowfast_tiny" else {}
    model = build_model(name, num_classes=5, **overrides).eval()
    clip = torch.randint(0, 256, (2, 3, 2 * model.alpha, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        ours = model(clip)
        assert torch.equal(ours, _pathways_outside(model, clip))
        assert torch.equal(model(model.normalize(clip)), ours)  # a float clip is taken as normalized already


def test_the_slow_pathway_is_every_alpha_th_frame_from_the_first():
    model = build_model("slowfast_r50_4x16", num_classes=3)  # alpha 8
    clip = torch.arange(32, dtype=torch.float32).view(1, 1, 32, 1, 1).expand(1, 3, 32, 8, 8)  # frame t holds t
    seen = []
    handle = model.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0][0][0, 0, :, 0, 0]))
    with torch.no_grad():
        model.eval()(clip)
    handle.remove()
    assert seen[0].tolist() == [0, 8, 16, 24]  # mmaction2's and the data pipeline's choice


def test_forward_builds_a_fresh_pathway_list_and_refuses_a_clip_alpha_does_not_divide():
    model = build_model("slowfast_tiny", num_classes=3).eval()
    clip = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    before = clip.clone()
    with torch.no_grad():
        first, second = model(clip), model(clip)  # pytorchvideo's blocks overwrite the list they are given
    assert torch.equal(first, second) and torch.equal(clip, before)
    with pytest.raises(ValueError, match=r"clip_len \(10\) must be a multiple of the model's alpha \(4\)"):
        model(torch.zeros(1, 3, 10, 32, 32, dtype=torch.uint8))


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = build_model("slowfast_tiny", num_classes=3).eval()
    clip = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        plain = model(clip)
        torch.testing.assert_close(apply_fast_path(model, channels_last=True, compile=False)(clip), plain)


def test_compile_sees_python_int_strides_not_tensors():
    # pytorchvideo computes strides as numpy ints, which Dynamo lifts into graph inputs (tensors);
    # Inductor then failed on those convolutions on CUDA and ran the model eagerly in pieces.
    model = build_model("slowfast_tiny", 5)
    explained = torch._dynamo.explain(model)(torch.randn(1, 3, 8, 32, 32))
    assert explained.graph_break_count == 0
    inputs = [node.name for node in explained.graphs[0].graph.nodes if node.op == "placeholder"]
    assert not [name for name in inputs if name.endswith(("stride_0_", "padding_0_", "kernel_size_0_"))], inputs


def test_r50_8x8_is_state_dict_compatible_with_pytorchvideo_slowfast_r50():
    hub = create_slowfast(model_num_class=400)  # the architecture of the hub's slowfast_r50
    ours = build_model("slowfast_r50_8x8", num_classes=400)
    hub_shapes = {k: v.shape for k, v in hub.state_dict().items()}
    our_shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert our_shapes == hub_shapes
    ours.load_state_dict(hub.state_dict())  # strict


def test_seed_preset_fuses_with_kernel_5_stride_8():
    model = build_model("slowfast_r50_4x16", num_classes=101)
    fusion = model.blocks[0].multipathway_fusion.conv_fast_to_slow
    assert fusion.kernel_size == (5, 1, 1) and fusion.stride == (8, 1, 1)
    assert model.alpha == 8
    assert 33.5e6 < sum(p.numel() for p in model.parameters()) < 34.5e6


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="slowfast_tiny"):
        build_model("slowfast_r18", 5)


@pytest.mark.parametrize("preset, hub_builder", [("slowfast_r101_8x8", slowfast_r101),
                                                 ("slowfast_16x8_r101_50_50", slowfast_16x8_r101_50_50)])
def test_r101_presets_are_state_dict_compatible_with_the_pytorchvideo_hub(preset, hub_builder):
    hub = hub_builder(pretrained=False)  # the hub's architecture; its weights would download
    ours = build_model(preset, num_classes=400)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in hub.state_dict().items()}


def test_mmaction2_preset_fuses_without_norm_or_activation():
    model = build_model("slowfast_r50_4x16_mmaction2", num_classes=400)
    for stage in range(4):  # after the stems and res2..res4
        fusion = model.blocks[stage].multipathway_fusion
        assert fusion.conv_fast_to_slow.kernel_size == (5, 1, 1) and fusion.conv_fast_to_slow.stride == (8, 1, 1)
        assert fusion.norm is None and fusion.activation is None
    assert model.alpha == 8
    assert 34.4e6 < count_parameters(model) < 34.6e6  # mmaction2's R50 4x16x1: ~34.5 M with 400 classes


def test_frozen_stages_train_only_the_rest_and_keep_frozen_batchnorm_statistics():
    torch.manual_seed(0)
    model = build_model("slowfast_tiny", num_classes=3, frozen_stages=2).train()
    trainable = {name.split(".")[1] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"3", "4", "6"}  # res4, res5 and the head
    assert not any(m.training for stage in range(3) for m in model.blocks[stage].modules())
    assert all(m.training for stage in (3, 4, 6) for m in model.blocks[stage].modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)
    model(torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)).sum().backward()
    optimizer.step()
    after = model.state_dict()
    frozen = [key for key in before if int(key.split(".")[1]) < 3]
    assert frozen and all(torch.equal(before[key], after[key]) for key in frozen)  # weights and BN statistics
    bn = "blocks.3.multipathway_blocks.0.res_blocks.0.branch2.norm_a."
    assert after[bn + "num_batches_tracked"] == 1 and not torch.equal(before[bn + "weight"], after[bn + "weight"])
    assert not torch.equal(before["blocks.6.proj.weight"], after["blocks.6.proj.weight"])

    probe = build_model("slowfast_tiny", num_classes=3, frozen_stages=4)  # linear probing
    assert count_parameters(probe, trainable_only=True) == 3 * probe.blocks[6].proj.in_features + 3
    with pytest.raises(ValueError, match="frozen_stages"):
        build_model("slowfast_tiny", 3, frozen_stages=5)
    with pytest.raises(RecipeError, match="'frozen_stages'"):
        Recipe(frozen_stages=-2)


def test_model_report_counts_parameters_and_flops():
    from accel_slowfast.models.builders import model_report

    model = build_model("slowfast_tiny", num_classes=5)
    report = model_report(model, clip_len=8, crop_size=32)
    assert report["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    # FLOPs grow with the view: 4x the pixels -> ~4x the FLOPs; a multiply-add is two FLOPs
    bigger = model_report(model, clip_len=8, crop_size=64)
    assert 3.5 < bigger["gflops_per_view"] / report["gflops_per_view"] < 4.5
    assert report["gflops_per_view"] == 2 * report["gmacs_per_view"]
    assert model.training  # the report leaves the mode as it was


@pytest.mark.slow
def test_model_report_command_prints_the_seed_model_size():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "accel_slowfast", "models", "slowfast_tiny", "--crop_size=32"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "slowfast_tiny" in result.stdout and "GMACs/view" in result.stdout and "GFLOPs/view" in result.stdout


def test_seed_model_size_matches_the_published_figures():
    """SlowFast R50 4x16, 400 classes: 34.5 M parameters and 36.4 "GFLOPs" per view, the published figures.

    The published 36.4 is fvcore's count of multiply-adds at the 256 px test crop (PySlowFast's and
    pytorchvideo's convention, one multiply-add = one "FLOP"): 72.8 true GFLOPs.
    """
    from accel_slowfast.models.builders import model_report

    report = model_report(build_model("slowfast_r50_4x16", num_classes=400), clip_len=32, crop_size=256)
    assert report["params_m"] == pytest.approx(34.5, rel=0.02)
    assert report["gmacs_per_view"] == pytest.approx(36.4, rel=0.02)
    assert report["gflops_per_view"] == pytest.approx(72.8, rel=0.02)


def test_models_command_names_the_head_it_counts_and_takes_the_runs():
    """``accel-slowfast models`` said 0.92 M for slowfast_tiny where a 5-class run logs 0.69 M."""
    import subprocess
    import sys

    def params(*args):
        result = subprocess.run([sys.executable, "-m", "accel_slowfast", "models", "slowfast_tiny", "--crop_size=32",
                                 *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[0], float(result.stdout.splitlines()[-1].split()[3])

    assert params() == ("Each preset with a 400-class head (--num_classes=N for another head)", 0.92)
    assert params("--num_classes=5") == ("Each preset with a 5-class head (--num_classes=N for another head)", 0.69)
