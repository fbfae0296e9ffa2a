"""Run by tests/test_distributed.py as one process or under torchrun with two (gloo on CPU).

    python tests/dist_data_check.py DATA_ROOT OUT.json
    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node 2 tests/dist_data_check.py ...
"""

import json
import sys

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import gather_object

import accel_slowfast  # noqa: F401
from accel_slowfast.data import ClipDataset, read_ucf101_split
from accel_slowfast.data.transforms import train_transform, val_transform
from accel_slowfast.engine.hooks import set_loader_epoch
from accel_slowfast.evaluation.metrics import evaluate
from accel_slowfast.models.builders import build_model


def main(root: str, out: str) -> None:
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True,
                                                                                  data_seed=0))
    lists = f"{root}/ucfTrainTestlist"
    clip = dict(clip_len=8, frame_interval=2, seed=0, bad_video_log=f"{out}.bad.txt")
    train_set = ClipDataset(read_ucf101_split(root, lists, 1, "train"), clip_sampling="random", **clip,
                            transforms=[train_transform(crop_size=32, crop_area=(0.5, 1.0),
                                                        flip_ratio=0.5)])
    val_set = ClipDataset(read_ucf101_split(root, lists, 1, "test"), clip_sampling="centre", **clip,
                          transforms=[val_transform(short_side=32, crop_size=32)])
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=2, shuffle=True, num_workers=1)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=4, num_workers=1)
    torch.manual_seed(0)
    model = build_model("slowfast_tiny", num_classes=5)
    model, train_loader, val_loader = accelerator.prepare(model, train_loader, val_loader)

    epochs = []
    for epoch in range(2):
        set_loader_epoch(train_loader, epoch)  # what SamplerSeedHook does
        seen = [(int(i), float(b["video"][k].sum())) for b in train_loader
                for k, i in enumerate(b["video_index"])]
        epochs.append(gather_object([seen]))  # one list per process
    metrics = evaluate(model, val_loader, accelerator)
    if accelerator.is_main_process:
        with open(out, "w") as file:
            json.dump({"processes": accelerator.num_processes, "epochs": epochs, "metrics": metrics}, file)
    accelerator.end_training()


if __name__ == "__main__":
    main(*sys.argv[1:])
