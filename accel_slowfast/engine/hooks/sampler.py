"""mmcv's ``DistSamplerSeedHook``: the loader's epoch, which seeds its shuffling and augmentation."""


class SamplerSeedHook:
    """mmcv's ``DistSamplerSeedHook``: tell the loader (sampler and dataset) the epoch."""

    priority = "NORMAL"

    def before_train_epoch(self, runner) -> None:
        set_loader_epoch(runner.data_loader, runner.epoch)


def set_loader_epoch(loader, epoch: int) -> None:
    """Tell a loader's sampler (shuffling) and dataset (augmentation) the epoch.

    Accelerate's prepared loader forwards ``set_epoch`` to the dataset only when its sampler has
    no ``set_epoch`` (accelerate 1.15: not under multi-process sharding), so call both.
    """
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    if hasattr(getattr(loader, "dataset", None), "set_epoch"):
        loader.dataset.set_epoch(epoch)
