"""Video data: indexes (which files, which labels), clip datasets, transforms, synthetic data.

    accel-slowfast data check recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --decode   # a recipe's data, decoded

A sample is a dict, the one contract between the data and the rest of the package:

=============== ========================= ==================================================
key             type                      meaning
=============== ========================= ==================================================
``video``       ``torch.Tensor``          one uint8 RGB clip ``(C, T, H, W)``, 0-255 (the
                                          model normalizes it on its device and takes from
                                          it what its backbone needs, such as SlowFast's two
                                          pathways); on the CPU, or on the run's GPU with
                                          ``decoder_device: cuda``
``label``       ``int``                   0-based class id of the clip returned
``video_index`` ``int``                   position in the index of the video asked for
``clip_index``  ``int``                   which temporal clip of that video (0..num_clips-1)
``view_index``  ``int``                   clip_index * num_crops + crop index
``replaced``    ``bool``                  the video failed to decode and another video's clip
                                          stands in (train: trained on; eval: not scored)
=============== ========================= ==================================================

Repeated augmentation (``num_repeats`` N > 1, training only): an item is a list of N such dicts
from one decode of the video, with the same ``label``, ``video_index`` and ``replaced`` (a bad
video's stand-in serves all N).

A batch (``ClipDataset.collate``, the loaders' ``collate_fn``) has the same entries as
``default_collate`` gives, with a leading batch dimension: ``video`` uint8 ``(B, C, T, H, W)``,
the index entries int64 ``(B,)``, ``replaced`` bool ``(B,)``. A repeated dataset's items are
flattened, a video's N clips side by side: a loader batch of ``b`` items holds ``b x N`` clips.
In training with mixing or label smoothing, ``engine.mixing.BatchMixing`` then turns a batch on the
device into a normalized float32 ``video`` (mixed), which the model takes as it is, and adds
``target``: ``(B, num_classes)`` float32 soft targets; ``label`` stays the hard labels.
"""

from accel_slowfast.data.dataset import ClipDataset
from accel_slowfast.data.frames import FrameFolderIndex, read_rawframe_list
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.readers import read_class_folders, read_hmdb51_split, read_list_file, read_ucf101_split
from accel_slowfast.data.synthetic import ensure_synthetic

__all__ = ["ClipDataset", "FrameFolderIndex", "VideoIndex", "VideoRecord", "ensure_synthetic", "read_class_folders",
           "read_hmdb51_split", "read_list_file", "read_rawframe_list", "read_ucf101_split"]
