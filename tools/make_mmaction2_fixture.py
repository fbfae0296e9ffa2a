"""Write tests/fixtures/mmaction2_slowfast_*: a small mmaction2 SlowFast, an input clip and its logits.

Runs in a side virtualenv holding mmaction2 1.2.0 (never in the project's environment)::

    bash /work/shared/peers/mmaction2/setup.sh /tmp/mmaction2-venv
    /tmp/mmaction2-venv/bin/python tools/make_mmaction2_fixture.py            # writes tests/fixtures/

The model is mmaction2's own ``slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb`` config (the seed
recipe's model: tau 8, alpha 8, beta_inv 8, fusion kernel 5, no lateral BN/ReLU, [fast, slow] head)
with the widths divided by 8 and one bottleneck per stage, so the weights stay under 1 MB:

    slow: base_channels 8 (R50: 64), fast: base_channels 1 (R50: 8), stage_blocks (1, 1, 1, 1)
    head: in_channels 256 + 32 = 288, 7 classes

Our equivalent is ``build_model("slowfast_r50_4x16_mmaction2", 7, model_depth=18, stem_dim_outs=(8, 1))``
(pytorchvideo's depth 18 = one bottleneck block per stage). Every BatchNorm gets random affine
parameters and running statistics and the FC a unit-scale init, so a wrong mapping (e.g. the
head's column order) moves the logits by O(1), far above the test's 1e-4 tolerance.

Outputs (tensors and plain Python values only):
    mmaction2_slowfast_tiny.pth      {'meta', 'state_dict', 'optimizer'} as mmaction2/mmengine save it
    mmaction2_slowfast_io.pt         {'clip': uint8 (N, C, T, H, W) 0-255 RGB, 'logits': (N, classes)}
    mmaction2_slowfast_r50_shapes.json  {key: shape} of the full-size R50 4x16x1 (400 classes), to
                                     check the key mapping and the FC widths (2304 = 256 fast + 2048 slow)
"""

import argparse
import copy
import importlib.metadata
import json
from pathlib import Path

import mmaction
import mmengine
import torch
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

CONFIG = "recognition/slowfast/slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py"
NUM_CLASSES = 7
CLIP_SHAPE = (2, 3, 16, 48, 48)  # (N, C, T, H, W): 16 fast frames -> 2 slow frames (x[:, :, ::8])
SEED = 20240101


def seed_model_cfg() -> dict:
    """mmaction2's own model config of the seed recipe (SlowFast R50 4x16x1, 400 classes)."""
    config_file = Path(mmaction.__file__).parent / ".mim" / "configs" / CONFIG
    return copy.deepcopy(Config.fromfile(str(config_file)).model)


def small_model_cfg() -> dict:
    """The seed config, narrowed and shortened (see the module docstring)."""
    cfg = seed_model_cfg()
    cfg.backbone.slow_pathway.update(base_channels=8, stage_blocks=(1, 1, 1, 1))
    cfg.backbone.fast_pathway.update(base_channels=1, stage_blocks=(1, 1, 1, 1))
    cfg.cls_head.update(in_channels=8 * 8 * 4 + 1 * 8 * 4, num_classes=NUM_CLASSES)
    return cfg


def randomize(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial statistics and the classifier unit-scale weights."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.num_batches_tracked.fill_(100)
        fc = model.cls_head.fc_cls
        fc.weight.copy_(torch.randn(fc.weight.shape, generator=generator) / fc.in_features**0.5)
        fc.bias.copy_(0.1 * torch.randn(fc.bias.shape, generator=generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    register_all_modules()
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = MODELS.build(small_model_cfg())
    model.init_weights()
    randomize(model, generator)
    model.eval()

    clip = torch.randint(0, 256, CLIP_SHAPE, dtype=torch.uint8, generator=generator)  # (N, C, T, H, W)
    # mmaction2's path: (N, num_clips=1, C, T, H, W) uint8 -> data_preprocessor (0-255 ImageNet mean/std)
    data = model.data_preprocessor(dict(inputs=list(clip[:, None]), data_samples=None), training=False)
    with torch.no_grad():
        logits = model(data["inputs"], mode="tensor", stage="head")  # (N, classes)
        direct = model.cls_head(model.backbone(data["inputs"][:, 0]))
    torch.testing.assert_close(logits, direct)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    meta = dict(  # what mmengine's Runner.save_checkpoint writes (plain values only)
        cfg=Config(dict(model=small_model_cfg())).pretty_text,
        seed=SEED,
        experiment_name="mmaction2_slowfast_tiny",
        time="20240101_000000",  # fixed, so that rerunning the tool rewrites identical files
        mmengine_version=mmengine.__version__,
        mmaction2_version=importlib.metadata.version("mmaction2"),
        epoch=0,
        iter=0,
    )
    checkpoint = dict(meta=meta, state_dict=weights_to_cpu(model.state_dict()), optimizer=optimizer.state_dict())
    save_checkpoint(checkpoint, str(out / "mmaction2_slowfast_tiny.pth"))
    torch.save(dict(clip=clip, logits=logits), out / "mmaction2_slowfast_io.pt")
    full = MODELS.build(seed_model_cfg()).state_dict()
    shapes = {key: list(value.shape) for key, value in full.items()}
    lines = ",\n".join(f"  {json.dumps(key)}: {json.dumps(shape)}" for key, shape in shapes.items())
    (out / "mmaction2_slowfast_r50_shapes.json").write_text("{\n" + lines + "\n}\n")  # one key per line
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters, logits {logits.tolist()}")


if __name__ == "__main__":
    main()
