import gc
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from accel_slowfast.data import ClipDataset, read_ucf101_split
from accel_slowfast.data.dataset import share_by_filename
from accel_slowfast.data.decoding import open_video
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.synthetic import write_video
from accel_slowfast.data.transforms import UniformCrop, train_transform, val_transform
from accel_slowfast.models.builders import PRESETS


def _dataset(index, train=True, clip_len=8, interval=2, seed=0, size=32, **kwargs):
    transform = (train_transform(crop_size=size, crop_area=(0.08, 1.0), flip_ratio=0.5)
                 if train else val_transform(short_side=size, crop_size=size))
    return ClipDataset(index, clip_len=clip_len, frame_interval=interval, transforms=[transform],
                       clip_sampling="random" if train else "centre", seed=seed, **kwargs)


@pytest.fixture(scope="module")
def train_index(tiny_root):
    return read_ucf101_split(tiny_root, tiny_root / "ucfTrainTestlist", 1, "train")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_sample_dict_shapes_for_every_preset(train_index, name):
    preset = PRESETS[name]
    dataset = _dataset(train_index, clip_len=preset.clip_len, interval=1)
    sample = dataset[3]
    assert sample["video"].shape == (3, preset.clip_len, 32, 32) and sample["video"].dtype == torch.uint8
    assert sample["label"] == train_index.records[3].label
    assert sample["video_index"] == 3 and sample["clip_index"] == 0 and sample["view_index"] == 0
    assert sample["replaced"] is False
    batch = dataset.collate([dataset[0], dataset[1]])
    assert batch["video"].shape == (2, 3, preset.clip_len, 32, 32) and batch["label"].shape == (2,)


def test_collate_gives_default_collates_batch_in_two_storages(train_index):
    dataset = _dataset(train_index)
    samples = [dataset[i] for i in range(3)]
    samples[1]["replaced"] = True  # a stand-in clip in the middle
    batch, expected = dataset.collate(samples), torch.utils.data.default_collate(samples)
    assert batch.keys() == expected.keys()
    for key in batch:
        assert batch[key].dtype == expected[key].dtype and torch.equal(batch[key], expected[key]), key
    assert batch["video"].shape == (3, 3, 8, 32, 32)  # one uint8 clip per sample, (B, C, T, H, W)
    assert batch["replaced"].tolist() == [False, True, False]
    assert len({t.untyped_storage().data_ptr() for t in batch.values()}) == 2


def test_persistent_workers_see_each_new_epoch(train_index):
    dataset = _dataset(train_index)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1, persistent_workers=True,
                                         collate_fn=dataset.collate)
    epochs = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        epochs.append(torch.cat([batch["video"] for batch in loader]))
        expected = dataset.collate([dataset[i] for i in range(len(dataset))])["video"]  # in this process
        assert torch.equal(epochs[-1], expected), f"epoch {epoch}"
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])


def test_samples_repeat_for_the_same_epoch_and_change_with_the_epoch(train_index):
    dataset = _dataset(train_index)
    first = dataset[5]["video"]
    torch.manual_seed(123)  # global RNG state must not matter
    torch.testing.assert_close(dataset[5]["video"], first)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[5]["video"], first)


def _descriptors_held_by_batches(dataset, worker_init_fn) -> int:
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=dataset.collate,
                                         worker_init_fn=worker_init_fn)
    batches = list(loader)
    expected = dataset.collate([dataset[i] for i in range(len(dataset))])["video"]
    assert torch.equal(torch.cat([b["video"] for b in batches]), expected)
    gc.collect()  # descriptors of earlier tests' garbage must not count as the batches'
    held = len(os.listdir("/proc/self/fd"))
    del batches
    gc.collect()
    return held - len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open descriptors in /proc")
def test_workers_hand_batches_over_by_file_name_and_leave_the_main_process_strategy(train_index):
    dataset = _dataset(train_index)
    batches = -(-len(dataset) // 2)  # the last may be partial
    # PyTorch's default: the main process holds a descriptor per received storage, fetched from the worker
    assert _descriptors_held_by_batches(dataset, None) == 2 * batches
    assert _descriptors_held_by_batches(dataset, share_by_filename) == 0  # opened by name, mapped, closed
    assert torch.multiprocessing.get_sharing_strategy() == "file_descriptor"


def test_decoded_frames_equal_pyav_frames(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, size=(30, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "v.avi"
    write_video(path, frames, fps=25)
    with av.open(str(path)) as container:
        reference = np.stack([f.to_rgb().to_ndarray() for f in container.decode(video=0)])
    dataset = _dataset(VideoIndex([VideoRecord(path, 0)], ["a"]), clip_len=8, interval=3)
    indices = dataset.frame_indices(30, np.random.default_rng(7))[0]
    clip = dataset._clips(0, np.random.default_rng(7))[0]  # (T, H, W, C)
    np.testing.assert_array_equal(clip.numpy(), reference[indices])


def test_frame_indices_random_centre_and_looping():
    dataset = _dataset(VideoIndex([], []), clip_len=4, interval=2)
    rng = np.random.default_rng(0)
    offsets = {int(dataset.frame_indices(20, rng)[0, 0]) for _ in range(200)}
    assert offsets == set(range(0, 20 - 8 + 1))  # uniform over the valid range
    dataset.clip_sampling = "centre"
    assert dataset.frame_indices(20, rng).tolist() == [[6, 8, 10, 12]]
    assert dataset.frame_indices(5, rng).tolist() == [[0, 2, 4, 1]]  # too short: loops
    dataset.clip_sampling, dataset.num_clips = "uniform", 3
    # mmaction2's test sampling: avg = (20 - 8 + 1) / 3, offsets int(avg / 2 + i * avg) = 2, 6, 10
    assert dataset.frame_indices(20, rng)[:, 0].tolist() == [2, 6, 10]


def test_val_clip_is_the_centre_crop_of_the_decoded_frames(train_index):
    dataset = _dataset(train_index, train=False)
    clip = dataset[0]["video"]
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.uint8
    with open_video(train_index.records[0].path) as video:
        indices = dataset.frame_indices(video.num_frames, dataset._rng(0))[0]
        frames = video.get_frames(indices)  # (T, H, W, C), short side already 32
    assert torch.equal(clip, UniformCrop(32)(frames).permute(3, 0, 1, 2))


def test_a_multigrid_key_gives_that_sample_at_its_shape_from_the_same_frames(train_index):
    def crop_to(size):
        return train_transform(crop_size=size, crop_area=(1.0, 1.0), flip_ratio=0.0)

    dataset = _dataset(train_index, clip_len=8, interval=2, transform_for_crop=crop_to)
    base, small = dataset[3], dataset[(3, 4, 4, 16)]
    assert small["video"].shape == (3, 4, 16, 16)
    assert small["label"] == base["label"] and small["video_index"] == 3
    # half the frames, twice as far apart: the same span of the video, from the same random offset
    assert np.array_equal(dataset.frame_indices(40, np.random.default_rng(0), 4, 4),
                          dataset.frame_indices(40, np.random.default_rng(0))[:, ::2])


# --- repeated augmentation (num_repeats): N clips of a video from one decode ------------------------------

class _Recording:
    """A transform that keeps the frames it is given and a draw from torch's RNG (as an augmentation draws)."""

    def __init__(self):
        self.calls = []

    def __call__(self, frames):
        self.calls.append((frames.clone(), torch.rand(1).item()))
        return UniformCrop(32)(frames).permute(3, 0, 1, 2)


@pytest.mark.parametrize("sample_once", [False, True], ids=["a-position-each", "sample-once"])
def test_the_repeats_of_an_item_come_from_one_decode_with_an_augmentation_each(train_index, monkeypatch, sample_once):
    recording = _Recording()
    dataset = ClipDataset(train_index, clip_len=4, frame_interval=1, transforms=[recording],
                          clip_sampling="random", num_repeats=3, sample_once=sample_once)
    with open_video(train_index.records[2].path) as video:
        rows = dataset.frame_indices(video.num_frames, dataset._rng(2))  # the positions item 2 draws
        expected = [video.get_frames(row) for row in rows]
    opened, requested, open_index = [], [], train_index.open

    def counting_open(i, *args):
        video = open_index(i, *args)
        opened.append(i)
        get_frames = video.get_frames
        video.get_frames = lambda indices: requested.append(indices.tolist()) or get_frames(indices)
        return video

    monkeypatch.setattr(train_index, "open", counting_open)
    samples = dataset[2]
    assert opened == [2] and requested == [rows.reshape(-1).tolist()]  # one open, one decode of every position
    assert len(samples) == 3
    assert all(s["label"] == train_index.labels[2] and s["video_index"] == 2 and not s["replaced"] for s in samples)
    inputs, draws = zip(*recording.calls, strict=True)
    assert len(set(draws)) == 3  # each repeat seeds its own augmentation
    if sample_once:  # one position, transformed three times
        assert rows.shape == (1, 4) and all(torch.equal(frames, expected[0]) for frames in inputs)
    else:  # three positions, one for each repeat
        assert rows.shape == (3, 4) and len(set(rows[:, 0].tolist())) == 3
        assert all(torch.equal(frames, want) for frames, want in zip(inputs, expected, strict=True))


@pytest.mark.parametrize("sample_once", [False, True], ids=["a-position-each", "sample-once"])
def test_the_first_repeat_is_the_clip_of_one_repeat_also_for_a_bad_videos_stand_in(train_index, sample_once):
    bad = {1: "RuntimeError: corrupt"}
    single = _dataset(train_index, known_bad=bad)
    repeated = _dataset(train_index, known_bad=bad, num_repeats=2, sample_once=sample_once)
    for i in range(3):
        first, second = repeated[i]
        assert torch.equal(first["video"], single[i]["video"])
        assert not torch.equal(first["video"], second["video"])
        assert first["label"] == second["label"] == single[i]["label"]
    stand_in = repeated[1]
    assert all(s["replaced"] and s["video_index"] == 1 for s in stand_in)  # one stand-in serves both
    again = repeated[1]  # and the same one every time
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(stand_in, again, strict=True))


def test_a_loader_batch_of_repeated_items_holds_each_videos_clips_side_by_side(train_index):
    dataset = _dataset(train_index, num_repeats=2)
    assert len(dataset) == len(train_index)  # an item per video, as without repeats
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=dataset.collate)
    assert len(loader) == -(-len(train_index) // 3)
    batch = next(iter(loader))
    clips = batch["video"]
    assert clips.shape == (6, 3, 8, 32, 32)
    assert batch["video_index"].tolist() == [0, 0, 1, 1, 2, 2]
    assert batch["label"].tolist() == [train_index.labels[i] for i in (0, 0, 1, 1, 2, 2)]
    assert torch.equal(clips[2:4], torch.stack([s["video"] for s in dataset[1]]))
