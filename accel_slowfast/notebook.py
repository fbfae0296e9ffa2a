"""The notebooks' set-up, and the tiny configuration they share with the tests.

    from accel_slowfast.notebook import make_recipe
    recipe = make_recipe("quickstart")     # the default recipe (ACCEL_SLOWFAST_NB_TINY=1: a seconds-long one)

Environment (what ``tests/test_notebooks.py`` sets; unset, the notebooks use the real defaults):

- ``ACCEL_SLOWFAST_NB_TINY=1``: ``TINY_SPEC``'s dataset and ``TINY``'s clip, batch and schedule
  (slowfast_tiny, 5 iterations an epoch, 2 epochs, a few seconds).
- ``ACCEL_SLOWFAST_NB_WORK_DIRS``: the folder of the notebooks' work_dirs (``work_dirs/notebooks``).
"""

import os
from pathlib import Path

from accel_slowfast.data.synthetic import SyntheticSpec, ensure_synthetic
from accel_slowfast.recipe.recipe import Recipe

# 5 classes x 3 groups x 2 clips = 30 videos of 40x32 px, 20 frames; group 1 is the test split.
TINY_SPEC = SyntheticSpec(width=40, height=32, num_frames=20, num_groups=3, clips_per_group=2, test_groups=(1,))
TINY = dict(clip_len=8, frame_interval=2, short_side=32, crop_size=32, test_crop_size=32, batch_size=4,
            num_workers=0, max_epochs=2, log_interval=2, eval_interval=1)


def work_dirs() -> Path:
    """``$ACCEL_SLOWFAST_NB_WORK_DIRS``, or ``work_dirs/notebooks``."""
    return Path(os.environ.get("ACCEL_SLOWFAST_NB_WORK_DIRS", "work_dirs/notebooks"))


def make_recipe(name: str, **overrides) -> Recipe:
    """The default recipe with the work_dir ``work_dirs() / name``, or the tiny one; ``overrides`` win.

    A notebook run again starts afresh (``overwrite``): the earlier run's checkpoints are moved aside.
    """
    values = dict(work_dir=str(work_dirs() / name), overwrite=True)
    if os.environ.get("ACCEL_SLOWFAST_NB_TINY", "0") == "1":
        values.update(data_root=str(ensure_synthetic(TINY_SPEC)), num_clips=2, **TINY)
    return Recipe(**{**values, **overrides})
