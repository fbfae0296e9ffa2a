"""From a recipe to the data a run reads: the indexes, the clip datasets and their loaders.

    train_index, val_index = build_indexes(recipe, accelerator)       # checked before any video opens
    train_set, val_set = build_datasets(recipe, train_index, val_index, accelerator)   # probed, cached
    loader = build_loader(train_set, recipe, accelerator, train=True)

Training (``training.py``), the multi-view test and the data check build their data here.
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
from accel_slowfast.data.transforms import train_transform, val_transform
from accel_slowfast.data.views import view_transforms
from accel_slowfast.errors import DataError, RecipeError
from accel_slowfast.multigrid import MultigridSchedule, Shape, enabled
from accel_slowfast.recipe.recipe import Recipe


def build_indexes(recipe: Recipe, accelerator: Accelerator) -> tuple[VideoIndex, VideoIndex]:
    """Train and validation indexes of ``recipe.dataset``, checked before any video is opened.

    The training set is read and checked first: the validation list is read against its classes,
    so a problem with the training set must not be reported as one of the validation list.
    """
    duplicates = {"duplicates": recipe.duplicate_videos}
    frames = dict(filename_tmpl=recipe.filename_tmpl, start_index=recipe.start_index)
    if recipe.dataset in ("synthetic", "ucf101", "hmdb51"):
        root, lists, split = Path(recipe.data_root), Path(recipe.annotation_dir), recipe.split
        if recipe.dataset == "synthetic":
            with accelerator.main_process_first():  # the main process generates, the others reuse
                root = Path(recipe.data_root) if recipe.data_root else ensure_synthetic()
            lists, split = Path(recipe.annotation_dir) if recipe.annotation_dir else root / "ucfTrainTestlist", 1
        read = read_hmdb51_split if recipe.dataset == "hmdb51" else read_ucf101_split
        folders = recipe.frame_folders  # v_x.avi is the folder v_x
        train_index = require_videos(read(root, lists, split, "train", folders=folders, **duplicates))
        val_index = read(root, lists, split, "test", folders=folders, **duplicates)
        if folders:
            train_index, val_index = (FrameFolderIndex.of(index, **frames) for index in (train_index, val_index))
    elif recipe.dataset == "folder":
        train_index = require_videos(read_class_folders(Path(recipe.data_root) / "train"))
        val_index = read_class_folders(Path(recipe.data_root) / "val")
        if val_index.classes != train_index.classes:
            only = sorted(set(train_index.classes) ^ set(val_index.classes))
            raise DataError(f"{recipe.data_root}/train and /val must hold the same class folders; in one of them "
                            f"only: {', '.join(only[:5])}")
    elif recipe.dataset == "hf":
        with accelerator.local_main_process_first():  # load_dataset writes its Arrow cache once per node
            splits = load_hf_dataset(recipe.hf_dataset)
        columns = dict(video_column=recipe.hf_video_column, label_column=recipe.hf_label_column)
        train_index = require_videos(HFVideoIndex(splits, recipe.hf_dataset, recipe.hf_train_split, **columns))
        val_index = HFVideoIndex(splits, recipe.hf_dataset, recipe.hf_val_split, classes=train_index.classes,
                                 **columns)
    else:
        read = partial(read_rawframe_list, **frames) if recipe.dataset == "rawframes" else read_list_file
        classes = read_label_map(recipe.label_map) if recipe.label_map else None
        train_index = require_videos(read(recipe.train_list, recipe.data_root, classes,
                                          classes_from=f"label_map {recipe.label_map}", **duplicates))
        val_index = read(recipe.val_list, recipe.data_root, train_index.classes,
                         classes_from=f"the training set {recipe.train_list}", **duplicates)
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


def _probing(recipe: Recipe) -> dict:
    """``find_bad_videos``'s keyword arguments from the recipe."""
    return dict(shared_cache=recipe.index_cache_shared, clip_len=recipe.clip_len,
                max_decode_pixels=recipe.max_decode_pixels)


def describe_videos(dataset: ClipDataset, name: str) -> str:
    """``"20 training videos (3 unusable: 1 missing, 2 unreadable; see bad_videos.txt)"``, for the Data: log line."""
    missing, unreadable = len(dataset.index.missing), len(dataset.known_bad)
    text = f"{len(dataset.index) + missing} {name} videos"
    if missing or unreadable:
        text += f" ({missing + unreadable} unusable: {missing} missing, {unreadable} unreadable; see {BAD_VIDEOS_FILE})"
    return text


def clip_augmentations(recipe: Recipe) -> list:
    """The per-clip regularisation the recipe asks for, in the order applied (``data/augment.py``)."""
    found = []
    if recipe.rand_augment:
        found.append(RandAugment(recipe.rand_augment_magnitude, recipe.rand_augment_layers, fill=tuple(recipe.mean)))
    if recipe.random_erasing:
        found.append(RandomErasing(recipe.random_erasing, tuple(recipe.mean), tuple(recipe.std)))
    return found


def check_decoder_loads(recipe: Recipe) -> None:
    """Raise a one-line ``RecipeError`` when the recipe's decoder cannot run here (torchcodec without FFmpeg),
    rather than every video failing to decode."""
    if recipe.decoder == "torchcodec":
        try:
            import torchcodec.decoders  # noqa: F401 - loads FFmpeg's libraries, or says it cannot
        except (ImportError, RuntimeError, OSError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RecipeError(f"decoder 'torchcodec' cannot load FFmpeg (it needs FFmpeg 4 to 9: apt-get install "
                              f"ffmpeg), or set --decoder=fast: {reason}") from None


def decode_device(recipe: Recipe, accelerator: Accelerator) -> torch.device:
    """Where the datasets decode: the CPU, or the run's own GPU with ``decoder_device: cuda``.

    Raises:
        RecipeError: torchcodec cannot load FFmpeg, or ``cuda`` was asked for on a run without a GPU.
    """
    check_decoder_loads(recipe)
    if recipe.decoder_device == "cpu":
        return torch.device("cpu")
    if accelerator.device.type != "cuda":
        raise RecipeError(f"decoder_device 'cuda' decodes onto the run's GPU, but this run is on "
                          f"{accelerator.device}: set --decoder_device=cpu")
    return accelerator.device


def build_datasets(
    recipe: Recipe, train_index: VideoIndex, val_index: VideoIndex, accelerator: Accelerator
) -> tuple[ClipDataset, ClipDataset]:
    for name, index in (("training", train_index), ("validation", val_index)):  # build_indexes: neither is empty
        if len(index.classes) > recipe.num_classes:
            raise RecipeError(f"the {name} set has {len(index.classes)} classes but 'num_classes' is "
                              f"{recipe.num_classes}; set --num_classes={len(index.classes)}")
    bad_video_log = Path(recipe.work_dir) / BAD_VIDEOS_FILE
    clip = dict(clip_len=recipe.clip_len, frame_interval=recipe.frame_interval, seed=recipe.seed,
                decoder=recipe.decoder, device=decode_device(recipe, accelerator), bad_video_log=bad_video_log)
    train_set = ClipDataset(
        train_index,
        transforms=[recipe_train_transform(recipe, recipe.crop_size)],
        transform_for_crop=partial(recipe_train_transform, recipe) if enabled(recipe) else None,
        clip_sampling="random",
        known_bad=find_bad_videos(train_index, accelerator, bad_video_log, **_probing(recipe)),
        num_repeats=recipe.num_repeats,  # repeated augmentation: training only, validation takes one clip a video
        sample_once=recipe.sample_once,
        **clip,
    )
    val_set = ClipDataset(
        val_index,
        transforms=[val_transform(short_side=recipe.short_side, crop_size=recipe.crop_size)],
        clip_sampling="centre",
        known_bad=find_bad_videos(val_index, accelerator, bad_video_log, **_probing(recipe)),
        **clip,
    )
    return train_set, val_set


def recipe_train_transform(recipe: Recipe, crop_size: int):
    """The recipe's training augmentation with a ``crop_size``² crop; a multigrid shape's smaller
    crop scales ``short_side_jitter`` with it, so the crop sees as much of the frame as at the base
    crop (RandomResizedCrop is scale-free already)."""
    jitter = tuple(round(side * crop_size / recipe.crop_size) for side in recipe.short_side_jitter)
    return train_transform(short_side_jitter=jitter or None, crop_size=crop_size,
                           crop_area=(recipe.crop_area_min, 1.0), flip_ratio=recipe.flip_ratio,
                           augment=clip_augmentations(recipe))


def build_test_dataset(recipe: Recipe, index: VideoIndex, accelerator: Accelerator) -> ClipDataset:
    """The multi-view test set: ``num_clips`` x ``num_crops`` views per video, one view per sample."""
    bad_video_log = Path(recipe.work_dir) / BAD_VIDEOS_FILE
    return ClipDataset(
        index,
        clip_len=recipe.clip_len, frame_interval=recipe.frame_interval,
        transforms=view_transforms(short_side=recipe.short_side, crop_size=recipe.test_crop_size,
                                   num_crops=recipe.num_crops),
        clip_sampling="uniform", num_clips=recipe.num_clips, seed=recipe.seed, decoder=recipe.decoder,
        device=decode_device(recipe, accelerator),
        known_bad=find_bad_videos(index, accelerator, bad_video_log, **_probing(recipe)),
        bad_video_log=bad_video_log,
    )


def build_loader(dataset: ClipDataset, recipe: Recipe, accelerator: Accelerator, train: bool,
                 base_shape: bool = False) -> DataLoader:
    """The training (``train``) or evaluation loader. A multigrid recipe's training loader takes
    each epoch's shapes (``MultigridBatchSampler``); with ``base_shape`` it takes the base shape
    in the same seeded order, for precise BN."""
    # Workers persist across epochs (the dataset's epoch is in shared memory), as mmaction2's do:
    # no start-up and shutdown per epoch. The loader's own generator keeps iterator creation from
    # drawing on torch's global RNG, whose checkpointed state must be the same whether an epoch
    # started here or was resumed mid-way.
    # batch_size counts clips: a repeated dataset's item is num_repeats of them (Recipe checks it divides)
    batching: dict = dict(batch_size=recipe.batch_size // dataset.num_repeats, shuffle=train)
    if train and enabled(recipe):
        base = [Shape(recipe.batch_size, recipe.clip_len, recipe.frame_interval, recipe.crop_size)]
        shapes = (lambda epoch: base) if base_shape else MultigridSchedule(recipe).shapes
        batching = dict(batch_sampler=MultigridBatchSampler(dataset, shapes, recipe.seed, accelerator.num_processes))
    return DataLoader(
        dataset,
        **batching,
        num_workers=recipe.num_workers,
        collate_fn=dataset.collate,
        worker_init_fn=init_worker,
        pin_memory=dataset.device.type == "cpu" and accelerator.device.type == "cuda",  # NVDEC's clips: on the GPU
        persistent_workers=recipe.num_workers > 0,
        generator=torch.Generator().manual_seed(recipe.seed),
    )
