"""MultigridBatchSampler: each epoch's shapes in a seeded order, the same shape on every process at each step."""

import pytest
from accelerate.data_loader import BatchSamplerShard

from accel_slowfast.data.multigrid_sampler import MultigridBatchSampler
from accel_slowfast.errors import RecipeError
from accel_slowfast.multigrid import Shape

SHAPES = [Shape(4, 4, 8, 28), Shape(2, 4, 8, 40), Shape(1, 8, 4, 56)]


class _Clips:
    """What the sampler reads of a ClipDataset: its length and epoch."""

    def __init__(self, size: int):
        self.size, self.epoch = size, 0

    def __len__(self) -> int:
        return self.size


def _shapes_at(epoch):
    return SHAPES if epoch == 0 else SHAPES[2:]


def test_batches_cycle_through_the_shapes_drop_the_incomplete_last_and_repeat_per_seed_and_epoch():
    clips = _Clips(19)
    sampler = MultigridBatchSampler(clips, _shapes_at, seed=3, num_processes=1)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 2, 1, 4, 2, 1, 4] == [s.batch_size for s in sampler.plan(0)]
    assert len(sampler) == 7 and {key[1:] for key in batches[1]} == {(4, 8, 40)}
    indices = [key[0] for batch in batches for key in batch]  # the last clip does not fill a batch of 2
    assert len(set(indices)) == 18 and all(0 <= i < 19 for i in indices)
    assert list(sampler) == batches  # an epoch's order depends on (seed, epoch) alone: a resume replays it
    clips.epoch = 1
    assert len(sampler) == 19 and [key[0] for batch in sampler for key in batch][:18] != indices


def test_with_two_processes_each_step_has_one_shape_and_the_processes_share_no_clip():
    clips = _Clips(30)
    sampler = MultigridBatchSampler(clips, _shapes_at, seed=0, num_processes=2)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=rank)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(sampler) // 2 == sampler.iterations(1) == 6
    for first, second in zip(*shards, strict=True):
        assert {key[1:] for key in first} == {key[1:] for key in second} and len(first) == len(second)
        assert not {key[0] for key in first} & {key[0] for key in second}


def test_an_epoch_whose_batch_exceeds_the_training_set_is_one_line_before_training():
    with pytest.raises(RecipeError, match="epoch 1 takes batches of 4 clips per process, more than the 6 training"):
        MultigridBatchSampler(_Clips(6), _shapes_at, seed=0, num_processes=2).iterations(2)
