"""The recipe's data source: which videos a run reads, from where, and with which decoder.

``Recipe`` (``accel_slowfast/config.py``) inherits these keys, so a YAML recipe and the command
line stay flat (``--dataset=list --train_list=...``); ``validate_source`` checks the combinations
between them. The keys follow ``recipe_fields.py``'s rules, like every other key.
"""

import importlib.util
from dataclasses import dataclass
from typing import Literal

from accel_slowfast.errors import RecipeError
from accel_slowfast.recipe.fields import DATA, PERF
from accel_slowfast.recipe.fields import recipe_field as _f

DATASETS = ("synthetic", "ucf101", "hmdb51", "list", "rawframes", "folder", "hf")
DECODERS = ("pyav", "fast", "torchcodec")  # the names of data/decoding.py's DECODERS
DUPLICATE_VIDEOS = ("keep", "drop")  # what the index readers do with a video listed twice


@dataclass
class DataSource:
    dataset: Literal[DATASETS] = _f("synthetic", "Dataset kind.", DATA)
    data_root: str = _f("", "Video folder (ucf101: UCF-101; hmdb51: <class>/ folders; folder: holds train/<class>/ "
                            "and val/<class>/). Empty for synthetic: generated into the cache.", DATA)
    annotation_dir: str = _f("", "ucf101: the ucfTrainTestlist folder; hmdb51: the *_test_split<N>.txt folder.", DATA)
    split: int = _f(1, "ucf101/hmdb51: official split 1, 2 or 3 (validation uses the split's test list).", DATA)
    train_list: str = _f("", "list: mmaction2 list / Kinetics CSV ('relative/path.avi label', 0-based) for "
                             "training; rawframes: 'frame_dir [offset] total_frames label'. Either as .txt or "
                             "mmaction2's .json.", DATA)
    val_list: str = _f("", "list: mmaction2 list file for validation.", DATA)
    hf_dataset: str = _f("", "hf: a Hugging Face datasets videofolder tree, folder of Parquet shards, save_to_disk "
                             "folder, or Hub id in the local cache (HF_HUB_OFFLINE=1).", DATA)
    hf_train_split: str = _f("train", "hf: the training split.", DATA)
    hf_val_split: str = _f("validation", "hf: the validation split (videofolder's val/ folder is 'validation').", DATA)
    hf_video_column: str = _f("video", "hf: the Video column (bytes or paths).", DATA)
    hf_label_column: str = _f("label", "hf: the label column, a ClassLabel (its names are the classes) or ints.", DATA)
    frame_folders: bool = _f(False, "ucf101/hmdb51: data_root holds frame folders (<Class>/v_x/img_00001.jpg, "
                                    "mmaction2's build_rawframes.py), read for the split files' v_x.avi.", DATA)
    filename_tmpl: str = _f("img_{:05}.jpg", "rawframes / frame_folders: a frame's file name; sampled frame i "
                                             "reads filename_tmpl.format(i + start_index + offset).", DATA)
    start_index: int = _f(1, "rawframes / frame_folders: the number of a folder's first frame.", DATA, min=0)
    label_map: str = _f("", "list/rawframes: class names by label: one name a line (mmaction2's label_map_k400.txt) "
                            "or UCF101's classInd.txt. Empty: the labels' numbers.", DATA)
    index_cache_shared: bool = _f(False, "The probed-index cache ($ACCEL_SLOWFAST_CACHE/index, default "
                                         "~/.cache/accel_slowfast/index) is on storage every node sees: the main "
                                         "process alone probes. False: the first process of each node probes.", DATA)
    duplicate_videos: Literal[DUPLICATE_VIDEOS] = _f("keep", "A video listed twice in one list (reported either way): "
                                                             "keep (trained as often as listed, as mmaction2 does) or "
                                                             "drop (each video once).", DATA)
    max_decode_pixels: int = _f(150_000_000, "Decode budget: frames x height x width of one clip (clip_len frames "
                                             "at the video's header size). A video over it is bad, never decoded: "
                                             "listed in bad_videos.txt (data/probe.py). The default holds 64 frames "
                                             "of 1080p.", DATA, min=1)
    decoder: Literal[DECODERS] = _f("fast", "Video decoder (torchcodec: an extra; see data/decoding.py).", PERF)
    decoder_device: Literal["cpu", "cuda"] = _f("cpu", "cuda: NVDEC (decoder torchcodec, num_workers 0) onto the run's "
                                                      "GPU; a video NVDEC cannot take is decoded on the CPU.", PERF)

    def validate_source(self) -> None:
        """The checks between the data-source keys; raise ``RecipeError`` naming them."""
        if self.dataset in ("ucf101", "hmdb51") and not (self.data_root and self.annotation_dir):
            raise RecipeError(f"dataset '{self.dataset}' needs 'data_root' (the video folder) and 'annotation_dir' "
                              "(the split files' folder)")
        if self.dataset in ("ucf101", "hmdb51") and self.split not in (1, 2, 3):
            raise RecipeError(f"recipe key 'split' must be 1, 2 or 3 for {self.dataset}, got {self.split}")
        if self.dataset == "folder" and not self.data_root:
            raise RecipeError("dataset 'folder' needs 'data_root' holding train/<class>/ and val/<class>/")
        if self.dataset == "hf" and not self.hf_dataset:
            raise RecipeError("dataset 'hf' needs 'hf_dataset': a datasets folder (videofolder, Parquet shards, "
                              "save_to_disk) or a Hub id in the local cache")
        if self.dataset in ("list", "rawframes") and not (self.train_list and self.val_list):
            raise RecipeError(f"dataset '{self.dataset}' needs 'train_list' and 'val_list' (mmaction2 list files)")
        if self.label_map and self.dataset not in ("list", "rawframes"):
            raise RecipeError(f"'label_map' names the labels of list files (dataset list or rawframes); dataset "
                              f"'{self.dataset}' names its classes itself: remove label_map")
        if self.frame_folders and self.dataset not in ("ucf101", "hmdb51"):
            raise RecipeError(f"'frame_folders' reads the ucf101/hmdb51 split files over frame folders; dataset "
                              f"'{self.dataset}' cannot take it (for mmaction2 frame lists set dataset: rawframes)")
        if self.dataset == "rawframes" or self.frame_folders:
            self._validate_frames()
        if self.decoder == "torchcodec" and importlib.util.find_spec("torchcodec") is None:
            raise RecipeError("decoder 'torchcodec' needs pip install 'accel_slowfast[torchcodec]' and FFmpeg")

    def _validate_frames(self) -> None:
        try:
            names = [self.filename_tmpl.format(number) for number in (1, 2)]
        except (IndexError, KeyError, ValueError, AttributeError, TypeError) as error:
            raise RecipeError(f"filename_tmpl {self.filename_tmpl!r} cannot take a frame number ({error}); write it "
                              "as mmaction2's, e.g. 'img_{:05}.jpg'") from None
        if names[0] == names[1]:
            raise RecipeError(f"filename_tmpl {self.filename_tmpl!r} gives every frame the same name; put the "
                              "frame number in it, e.g. 'img_{:05}.jpg'")
        if self.decoder_device != "cpu":
            raise RecipeError("frame folders decode their JPEGs on the CPU: set --decoder_device=cpu")
