"""Video data: indexes (which files, which labels), clip datasets, transforms, synthetic data.

The sample dict every dataset returns is documented in ``accel_slowfast/data/dataset.py``.
"""

from accel_slowfast.data.dataset import ClipDataset
from accel_slowfast.data.frames import FrameFolderIndex, read_rawframe_list
from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.data.readers import read_class_folders, read_hmdb51_split, read_list_file, read_ucf101_split
from accel_slowfast.data.synthetic import ensure_synthetic

__all__ = ["ClipDataset", "FrameFolderIndex", "VideoIndex", "VideoRecord", "ensure_synthetic", "read_class_folders",
           "read_hmdb51_split", "read_list_file", "read_rawframe_list", "read_ucf101_split"]
