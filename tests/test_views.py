import pytest
import torch

from accel_slowfast.data import ClipDataset, read_ucf101_split
from accel_slowfast.data.views import uniform_clip_offsets, view_transforms


def test_uniform_clip_offsets_follow_mmaction2():
    # mmaction2's test-mode SampleFrames: offset i * avg + avg / 2, avg = (n - 64 + 1) / 10
    n, span = 175, 64
    avg = (n - span + 1) / 10
    assert uniform_clip_offsets(n, span, 10).tolist() == [int(avg / 2 + i * avg) for i in range(10)]
    assert uniform_clip_offsets(40, 64, 3).tolist() == [0, 0, 0]


def test_three_crops_cover_the_long_side():
    frames = torch.arange(8, dtype=torch.uint8).view(1, 1, 8, 1).expand(1, 4, 8, 3)  # (T, H=4, W=8, C), value = column
    crops = [view(frames) for view in view_transforms(short_side=4, crop_size=4, num_crops=3)]
    assert [c[0, 0, 0].tolist() for c in crops] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    (centre,) = view_transforms(short_side=4, crop_size=4, num_crops=1)
    assert centre(frames)[0, 0, 0].tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="num_crops"):
        view_transforms(short_side=4, crop_size=4, num_crops=2)


def test_multi_view_dataset_yields_every_view_of_every_video(tiny_root):
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    dataset = ClipDataset(index, clip_len=4, frame_interval=2, clip_sampling="uniform", num_clips=2,
                          transforms=view_transforms(short_side=32, crop_size=32, num_crops=3))
    assert len(dataset) == len(index) * 6
    samples = [dataset[i] for i in range(12)]
    assert [(s["video_index"], s["clip_index"], s["view_index"]) for s in samples[:6]] == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 3), (0, 1, 4), (0, 1, 5)]
    assert all(s["video"].shape == (3, 4, 32, 32) for s in samples)
    # the three crops of one clip differ (40x32 frames: left/centre/right)
    assert not torch.equal(samples[0]["video"], samples[2]["video"])
    assert not torch.equal(samples[0]["video"], samples[3]["video"])  # another clip


def test_recipe_builds_the_thirty_view_test_set(tiny_root, tmp_path):
    from accelerate import Accelerator
    from conftest import tiny_recipe

    from accel_slowfast.checkpointing.names import BAD_VIDEOS_FILE
    from accel_slowfast.data.builders import build_test_dataset

    recipe = tiny_recipe(tiny_root, tmp_path, test_crop_size=32)
    assert (recipe.num_clips, recipe.num_crops, recipe.average_clips) == (10, 3, "prob")
    (tmp_path).mkdir(exist_ok=True)
    index = read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "test")
    dataset = build_test_dataset(recipe.data_args, recipe.evaluation_args, recipe.short_side, index,
                                 Accelerator(cpu=True), seed=recipe.seed, bad_video_log=tmp_path / BAD_VIDEOS_FILE)
    assert len(dataset) == 30 * len(index)
    sample = dataset[29]
    assert (sample["clip_index"], sample["view_index"]) == (9, 29) and sample["video"].shape == (3, 8, 32, 32)
