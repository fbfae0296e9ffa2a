"""The training batches of a multigrid run: each epoch's shapes (``accel_slowfast/multigrid.py``) as a batch sampler.

    sampler = MultigridBatchSampler(train_set, MultigridSchedule(recipe).shapes, seed=0, num_processes=2)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=train_set.collate)

A batch is a list of ``(index, clip_len, frame_interval, crop_size)`` keys, which ``ClipDataset``
reads as "this sample at this shape". The order is a permutation drawn from ``(seed, epoch)``
alone, the epoch being the one the dataset holds (``set_epoch``, every epoch), so an epoch's
batches are the same however often it is started: a resumed run skips to the same batch.

Several processes: Accelerate's ``BatchSamplerShard`` deals batch ``k`` to process
``k % num_processes``; the shape changes every ``num_processes`` batches, so all processes train
the same shape at each step. The incomplete last round is dropped (``drop_last``), as PySlowFast's
training loader drops its last batch: every process runs the same number of steps.
"""

from collections.abc import Callable, Iterator

import numpy as np

from accel_slowfast.data.dataset import ClipDataset
from accel_slowfast.errors import RecipeError
from accel_slowfast.multigrid import Shape


class MultigridBatchSampler:
    """Batches of ``dataset`` keys at the shapes ``shapes_at(epoch)`` lists, in turn."""

    drop_last = True  # read by Accelerate's BatchSamplerShard: never loop back to the first batches

    def __init__(self, dataset: ClipDataset, shapes_at: Callable[[int], list[Shape]], seed: int, num_processes: int):
        self.dataset, self.shapes_at, self.seed, self.num_processes = dataset, shapes_at, seed, num_processes
        self._planned: tuple[int, list[Shape]] | None = None  # the last epoch's plan: len() is asked every iteration

    def plan(self, epoch: int) -> list[Shape]:
        """The shape of every batch of ``epoch``, over all processes."""
        if self._planned is None or self._planned[0] != epoch:
            shapes, planned, left, step = self.shapes_at(epoch), [], len(self.dataset), 0
            while left >= (need := self.num_processes * shapes[step % len(shapes)].batch_size):
                planned += [shapes[step % len(shapes)]] * self.num_processes
                left, step = left - need, step + 1
            self._planned = (epoch, planned)
        return self._planned[1]

    def iterations(self, max_epochs: int) -> int:
        """The run's iterations per process; ``RecipeError`` when an epoch would have none."""
        counts = [len(self.plan(epoch)) // self.num_processes for epoch in range(max_epochs)]
        if 0 in counts:
            epoch = counts.index(0)
            batch = self.shapes_at(epoch)[0].batch_size
            raise RecipeError(f"multigrid: epoch {epoch + 1} takes batches of {batch} clips per process, more than the "
                              f"{len(self.dataset)} training clips give {self.num_processes} process(es); lower "
                              "batch_size")
        return sum(counts)

    def __len__(self) -> int:
        return len(self.plan(self.dataset.epoch))

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        epoch = self.dataset.epoch
        order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(len(self.dataset))
        start = 0
        for shape in self.plan(epoch):
            yield [(int(index), shape.clip_len, shape.frame_interval, shape.crop_size)
                   for index in order[start:start + shape.batch_size]]
            start += shape.batch_size
