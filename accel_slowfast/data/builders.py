"""From a recipe to the data a run reads: the indexes, the clip datasets and their loaders.

    train_index, val_index = build_indexes(recipe.data_args, accelerator)   # checked before any video opens
    train_set, val_set = build_datasets(recipe.data_args, recipe.augmentation_args, recipe.model_args,
                                        train_index, val_index, accelerator, seed=0, bad_video_log=path)
    loader = build_loader(train_set, recipe.data_args, accelerator, batch_size=16, seed=0, train=True)

Each builder takes the recipe sections it reads (``recipe/``). Training (``engine/training.py``),
the multi-view test and the data check build their data here.
"""

from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE
from accel_slowfast.data.annotations import read_label_map
from accel_slowfast.data.augment import RandAugment, RandomErasing
from accel_slowfast.data.dataset import ClipDataset, init_worker, list_bad_videos
from accel_slowfast.data.frames import FrameFolderIndex, read_rawframe_list
from accel_slowfast.data.hf import HFVideoIndex, load_hf_dataset
from accel_slowfast.data.index import VideoIndex, check_splits, require_videos
from accel_slowfast.data.multigrid_sampler import MultigridBatchSampler
from accel_slowfast.data.probe import over_budget, probe_errors, probe_index
from accel_slowfast.data.readers import read_class_folders, read_hmdb51_split, read_list_file, read_ucf101_split
from accel_slowfast.data.synthetic import ensure_synthetic
from accel_slowfast.data.torchcodec_decoding import torchcodec_missing
from accel_slowfast.data.transforms import train_transform, val_transform
from accel_slowfast.data.views import view_transforms
from accel_slowfast.errors import DataError, RecipeError
from accel_slowfast.multigrid import MultigridSchedule, Shape
from accel_slowfast.recipe.data import AugmentationArgs, DataArgs
from accel_slowfast.recipe.run import EvaluationArgs, ModelArgs


def build_indexes(data: DataArgs, accelerator: Accelerator) -> tuple[VideoIndex, VideoIndex]:
    """Train and validation indexes of ``data.dataset``, checked before any video is opened.

    The training set is read and checked first: the validation list is read against its classes,
    so a problem with the training set must not be reported as one of the validation list.
    """
    duplicates = {"duplicates": data.duplicate_videos}
    frames = dict(filename_tmpl=data.filename_tmpl, start_index=data.start_index)
    if data.dataset in ("synthetic", "ucf101", "hmdb51"):
        root, lists, split = Path(data.data_root), Path(data.annotation_dir), data.split
        if data.dataset == "synthetic":
            with accelerator.main_process_first():  # the main process generates, the others reuse
                root = Path(data.data_root) if data.data_root else ensure_synthetic()
            lists, split = Path(data.annotation_dir) if data.annotation_dir else root / "ucfTrainTestlist", 1
        read = read_hmdb51_split if data.dataset == "hmdb51" else read_ucf101_split
        folders = data.frame_folders  # v_x.avi is the folder v_x
        train_index = require_videos(read(root, lists, split, "train", folders=folders, **duplicates))
        val_index = read(root, lists, split, "test", folders=folders, **duplicates)
        if folders:
            train_index, val_index = (FrameFolderIndex.of(index, **frames) for index in (train_index, val_index))
    elif data.dataset == "folder":
        train_index = require_videos(read_class_folders(Path(data.data_root) / "train"))
        val_index = read_class_folders(Path(data.data_root) / "val")
        if val_index.classes != train_index.classes:
            only = sorted(set(train_index.classes) ^ set(val_index.classes))
            raise DataError(f"{data.data_root}/train and /val must hold the same class folders; in one of them "
                            f"only: {', '.join(only[:5])}")
    elif data.dataset == "hf":
        with accelerator.local_main_process_first():  # load_dataset writes its Arrow cache once per node
            splits = load_hf_dataset(data.hf_dataset)
        columns = dict(video_column=data.hf_video_column, label_column=data.hf_label_column)
        train_index = require_videos(HFVideoIndex(splits, data.hf_dataset, data.hf_train_split, **columns))
        val_index = HFVideoIndex(splits, data.hf_dataset, data.hf_val_split, classes=train_index.classes,
                                 **columns)
    else:
        read = partial(read_rawframe_list, **frames) if data.dataset == "rawframes" else read_list_file
        classes = read_label_map(data.label_map) if data.label_map else None
        train_index = require_videos(read(data.train_list, data.data_root, classes,
                                          classes_from=f"label_map {data.label_map}", **duplicates))
        val_index = read(data.val_list, data.data_root, train_index.classes,
                         classes_from=f"the training set {data.train_list}", **duplicates)
    check_splits(train_index, require_videos(val_index))
    return train_index, val_index


def find_bad_videos(index: VideoIndex, accelerator: Accelerator, bad_video_log: Path, *, shared_cache: bool,
                    clip_len: int, max_decode_pixels: int) -> dict[int, str]:
    """Probe every video (cached) and list the unusable ones, missing files and videos over the decode budget
    (``max_decode_pixels``, ``probe.over_budget``: refused from the header, never decoded) included, in
    ``bad_video_log``.

    One process per node probes: the local main process of each node writes its node's cache while the
    others on the node wait, then read it (a global ``main_process_first`` made every process of the other
    nodes probe at once). With ``shared_cache`` every node reads the same cache, so the main process alone
    probes.
    """
    first = accelerator.main_process_first if shared_cache else accelerator.local_main_process_first
    with first():
        table = probe_index(index)
    bad = {**over_budget(table, clip_len, max_decode_pixels), **probe_errors(table)}
    if accelerator.is_main_process:
        reasons = {str(path): f"missing: no such file (listed in {index.source})" for path in index.missing}
        reasons.update((index.paths[i], reason) for i, reason in bad.items())
        if reasons:
            list_bad_videos(bad_video_log, reasons)
    return bad


def _probing(data: DataArgs) -> dict:
    """``find_bad_videos``'s keyword arguments from the data section."""
    return dict(shared_cache=data.index_cache_shared, clip_len=data.clip_len, max_decode_pixels=data.max_decode_pixels)


def describe_videos(dataset: ClipDataset, name: str) -> str:
    """``"20 training videos (3 unusable: 1 missing, 2 unreadable; see bad_videos.txt)"``, for the Data: log line."""
    missing, unreadable = len(dataset.index.missing), len(dataset.known_bad)
    text = f"{len(dataset.index) + missing} {name} videos"
    if missing or unreadable:
        text += f" ({missing + unreadable} unusable: {missing} missing, {unreadable} unreadable; see {BAD_VIDEOS_FILE})"
    return text


def clip_augmentations(augmentation: AugmentationArgs, model: ModelArgs) -> list:
    """The per-clip regularisation the recipe asks for, in the order applied (``data/augment.py``); the
    model's ``mean`` and ``std`` fill what they erase."""
    found = []
    if augmentation.rand_augment:
        found.append(RandAugment(augmentation.rand_augment_magnitude, augmentation.rand_augment_layers,
                                 fill=tuple(model.mean)))
    if augmentation.random_erasing:
        found.append(RandomErasing(augmentation.random_erasing, tuple(model.mean), tuple(model.std)))
    return found


def check_decoder_loads(data: DataArgs) -> None:
    """Raise a one-line ``RecipeError`` when the recipe's decoder cannot run here (torchcodec without FFmpeg),
    rather than every video failing to decode."""
    if data.decoder == "torchcodec" and (reason := torchcodec_missing()):
        raise RecipeError(f"decoder 'torchcodec' cannot load FFmpeg (it needs FFmpeg 4 to 9: apt-get install "
                          f"ffmpeg), or set --decoder=fast: {reason}")


def decode_device(data: DataArgs, accelerator: Accelerator) -> torch.device:
    """Where the datasets decode: the CPU, or the run's own GPU with ``decoder_device: cuda``.

    Raises:
        RecipeError: torchcodec cannot load FFmpeg, or ``cuda`` was asked for on a run without a GPU.
    """
    check_decoder_loads(data)
    if data.decoder_device == "cpu":
        return torch.device("cpu")
    if accelerator.device.type != "cuda":
        raise RecipeError(f"decoder_device 'cuda' decodes onto the run's GPU, but this run is on "
                          f"{accelerator.device}: set --decoder_device=cpu")
    return accelerator.device


def build_datasets(
    data: DataArgs, augmentation: AugmentationArgs, model: ModelArgs, train_index: VideoIndex, val_index: VideoIndex,
    accelerator: Accelerator, *, seed: int, bad_video_log: Path, multigrid: MultigridSchedule | None = None,
) -> tuple[ClipDataset, ClipDataset]:
    """The training and validation clip datasets, their unusable videos found (and listed in
    ``bad_video_log``). ``model``: its ``num_classes`` must hold every class; its ``mean`` and ``std``
    fill erased pixels. A ``multigrid`` run's training set also crops at each shape's size."""
    for name, index in (("training", train_index), ("validation", val_index)):  # build_indexes: neither is empty
        if len(index.classes) > model.num_classes:
            raise RecipeError(f"the {name} set has {len(index.classes)} classes but 'num_classes' is "
                              f"{model.num_classes}; set --num_classes={len(index.classes)}")
    clip = dict(clip_len=data.clip_len, frame_interval=data.frame_interval, seed=seed,
                decoder=data.decoder, device=decode_device(data, accelerator), bad_video_log=bad_video_log)
    train_crop = partial(recipe_train_transform, augmentation, model)
    train_set = ClipDataset(
        train_index,
        transforms=[train_crop(augmentation.crop_size)],
        transform_for_crop=train_crop if multigrid else None,
        clip_sampling="random",
        known_bad=find_bad_videos(train_index, accelerator, bad_video_log, **_probing(data)),
        num_repeats=data.num_repeats,  # repeated augmentation: training only, validation takes one clip a video
        sample_once=data.sample_once,
        **clip,
    )
    val_set = ClipDataset(
        val_index,
        transforms=[val_transform(short_side=augmentation.short_side, crop_size=augmentation.crop_size)],
        clip_sampling="centre",
        known_bad=find_bad_videos(val_index, accelerator, bad_video_log, **_probing(data)),
        **clip,
    )
    return train_set, val_set


def recipe_train_transform(augmentation: AugmentationArgs, model: ModelArgs, crop_size: int):
    """The recipe's training augmentation with a ``crop_size``² crop; a multigrid shape's smaller
    crop scales ``short_side_jitter`` with it, so the crop sees as much of the frame as at the base
    crop (RandomResizedCrop is scale-free already)."""
    jitter = tuple(round(side * crop_size / augmentation.crop_size) for side in augmentation.short_side_jitter)
    return train_transform(short_side_jitter=jitter or None, crop_size=crop_size,
                           crop_area=(augmentation.crop_area_min, 1.0), flip_ratio=augmentation.flip_ratio,
                           augment=clip_augmentations(augmentation, model))


def build_test_dataset(data: DataArgs, evaluation: EvaluationArgs, short_side: int, index: VideoIndex,
                       accelerator: Accelerator, *, seed: int, bad_video_log: Path) -> ClipDataset:
    """The multi-view test set: ``num_clips`` x ``num_crops`` views per video, one view per sample,
    each resized to ``short_side`` (the augmentation section's) before its crop."""
    return ClipDataset(
        index,
        clip_len=data.clip_len, frame_interval=data.frame_interval,
        transforms=view_transforms(short_side=short_side, crop_size=evaluation.test_crop_size,
                                   num_crops=evaluation.num_crops),
        clip_sampling="uniform", num_clips=evaluation.num_clips, seed=seed, decoder=data.decoder,
        device=decode_device(data, accelerator),
        known_bad=find_bad_videos(index, accelerator, bad_video_log, **_probing(data)),
        bad_video_log=bad_video_log,
    )


def build_loader(dataset: ClipDataset, data: DataArgs, accelerator: Accelerator, *, batch_size: int, seed: int,
                 train: bool, multigrid: MultigridSchedule | None = None, base_shape: bool = False) -> DataLoader:
    """The training (``train``) or evaluation loader of ``batch_size`` clips. A ``multigrid`` run's
    training loader takes each epoch's shapes (``MultigridBatchSampler``); with ``base_shape`` it
    takes the base shape in the same seeded order, for precise BN."""
    # Workers persist across epochs (the dataset's epoch is in shared memory), as mmaction2's do:
    # no start-up and shutdown per epoch. The loader's own generator keeps iterator creation from
    # drawing on torch's global RNG, whose checkpointed state must be the same whether an epoch
    # started here or was resumed mid-way.
    # batch_size counts clips: a repeated dataset's item is num_repeats of them (Recipe checks it divides)
    batching: dict = dict(batch_size=batch_size // dataset.num_repeats, shuffle=train)
    if train and multigrid:
        base = [Shape(multigrid.batch_size, multigrid.clip_len, multigrid.frame_interval, multigrid.crop_size)]
        shapes = (lambda epoch: base) if base_shape else multigrid.shapes
        batching = dict(batch_sampler=MultigridBatchSampler(dataset, shapes, seed, accelerator.num_processes))
    return DataLoader(
        dataset,
        **batching,
        num_workers=data.num_workers,
        collate_fn=dataset.collate,
        worker_init_fn=init_worker,
        pin_memory=dataset.device.type == "cpu" and accelerator.device.type == "cuda",  # NVDEC's clips: on the GPU
        persistent_workers=data.num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
