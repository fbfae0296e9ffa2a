"""The recipe's data keys: which videos a run reads, from where, how (``DataArgs``), and how its
training clips are augmented (``AugmentationArgs``).

    train_index, val_index = build_indexes(recipe.data_args, accelerator)      # data/builders.py

A YAML recipe and the command line stay flat (``--dataset=list --train_list=...``): ``Recipe``
inherits both sections. Each section's ``validate`` checks the combinations of its own keys;
those with other sections' keys are ``Recipe.validate``'s.
"""

import importlib.util
from dataclasses import dataclass
from typing import Literal

from accel_slowfast.errors import RecipeError
from accel_slowfast.recipe.fields import Section
from accel_slowfast.recipe.fields import recipe_field as _f  # short: the fields below use it on every line

DATASETS = ("synthetic", "ucf101", "hmdb51", "list", "rawframes", "folder", "hf")
DECODERS = ("pyav", "fast", "torchcodec")  # the names of data/decoding.py's DECODERS
DEFAULT_DECODER = "fast"  # a recipe's, and every decoding function's when not told
DUPLICATE_VIDEOS = ("keep", "drop")  # what the index readers do with a video listed twice


@dataclass
class DataArgs(Section):
    GROUP = "data"

    dataset: Literal[DATASETS] = _f("synthetic", "Dataset kind.")
    data_root: str = _f("", "Video folder (ucf101: UCF-101; hmdb51: <class>/ folders; folder: holds train/<class>/ "
                            "and val/<class>/). Empty for synthetic: generated into the cache.")
    annotation_dir: str = _f("", "ucf101: the ucfTrainTestlist folder; hmdb51: the *_test_split<N>.txt folder.")
    split: int = _f(1, "ucf101/hmdb51: official split 1, 2 or 3 (validation uses the split's test list).")
    train_list: str = _f("", "list: mmaction2 list / Kinetics CSV ('relative/path.avi label', 0-based) for "
                             "training; rawframes: 'frame_dir [offset] total_frames label'. Either as .txt or "
                             "mmaction2's .json.")
    val_list: str = _f("", "list: mmaction2 list file for validation.")
    hf_dataset: str = _f("", "hf: a Hugging Face datasets videofolder tree, folder of Parquet shards, save_to_disk "
                             "folder, or Hub id in the local cache (HF_HUB_OFFLINE=1).")
    hf_train_split: str = _f("train", "hf: the training split.")
    hf_val_split: str = _f("validation", "hf: the validation split (videofolder's val/ folder is 'validation').")
    hf_video_column: str = _f("video", "hf: the Video column (bytes or paths).")
    hf_label_column: str = _f("label", "hf: the label column, a ClassLabel (its names are the classes) or ints.")
    frame_folders: bool = _f(False, "ucf101/hmdb51: data_root holds frame folders (<Class>/v_x/img_00001.jpg, "
                                    "mmaction2's build_rawframes.py), read for the split files' v_x.avi.")
    filename_tmpl: str = _f("img_{:05}.jpg", "rawframes / frame_folders: a frame's file name; sampled frame i "
                                             "reads filename_tmpl.format(i + start_index + offset).")
    start_index: int = _f(1, "rawframes / frame_folders: the number of a folder's first frame.", min=0)
    label_map: str = _f("", "list/rawframes: class names by label: one name a line (mmaction2's label_map_k400.txt) "
                            "or UCF101's classInd.txt. Empty: the labels' numbers.")
    index_cache_shared: bool = _f(False, "The probed-index cache ($ACCEL_SLOWFAST_CACHE/index, default "
                                         "~/.cache/accel_slowfast/index) is on storage every node sees: the main "
                                         "process alone probes. False: the first process of each node probes.")
    duplicate_videos: Literal[DUPLICATE_VIDEOS] = _f("keep", "A video listed twice in one list (reported either way): "
                                                             "keep (trained as often as listed, as mmaction2 does) or "
                                                             "drop (each video once).")
    max_decode_pixels: int = _f(150_000_000, "Decode budget: frames x height x width of one clip (clip_len frames "
                                             "at the video's header size). A video over it is bad, never decoded: "
                                             "listed in bad_videos.txt (data/probe.py). The default holds 64 frames "
                                             "of 1080p.", min=1)
    clip_len: int = _f(16, "Frames per clip (SlowFast: the fast pathway's; a multiple of its alpha).", min=1)
    frame_interval: int = _f(2, "Source frames between two sampled frames.", min=1)
    num_repeats: int = _f(1, "Training: clips taken from each video per decode, each augmented on its own (repeated "
                             "augmentation: mmaction2's RepeatAugDataset, PySlowFast's AUG.NUM_SAMPLE).", min=1)
    sample_once: bool = _f(False, "num_repeats: every repeat takes the same frames (one random position, only the "
                                  "augmentations differ) instead of a position of its own.")
    num_workers: int = _f(2, "Data loading processes per device.", min=0)
    decoder: Literal[DECODERS] = _f(DEFAULT_DECODER, "Video decoder (torchcodec: an extra; see data/decoding.py).")
    decoder_device: Literal["cpu", "cuda"] = _f("cpu", "cuda: NVDEC (decoder torchcodec, num_workers 0) onto the run's "
                                                      "GPU; a video NVDEC cannot take is decoded on the CPU.")

    def validate(self) -> None:
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
        if self.sample_once and self.num_repeats == 1:
            raise RecipeError("recipe key 'sample_once' applies only with num_repeats > 1; set --num_repeats=2 or "
                              "drop it")
        # Installed is all a recipe can check without torch; data/builders.py's check_decoder_loads
        # finds whether it loads FFmpeg, when a run starts.
        if self.decoder == "torchcodec" and importlib.util.find_spec("torchcodec") is None:
            raise RecipeError("decoder 'torchcodec' needs pip install 'accel_slowfast[torchcodec]' and FFmpeg")
        if self.decoder_device == "cuda" and (self.decoder != "torchcodec" or self.num_workers):
            raise RecipeError("decoder_device 'cuda' decodes with torchcodec's NVDEC in the main process (CUDA cannot "
                              "start in forked loader workers): set --decoder=torchcodec --num_workers=0")

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


@dataclass
class AugmentationArgs(Section):
    GROUP = "augmentation"

    short_side: int = _f(56, "Validation/test frames are resized to this short side (training crops are "
                             "scale-free).", min=1)
    crop_size: int = _f(56, "Side of the square crop fed to the model.", min=1)
    short_side_jitter: list[int] = _f([], "Train with PySlowFast's scale jitter: random short side in [min, max], "
                                          "then a random crop (instead of RandomResizedCrop), e.g. "
                                          "[256, 320].")
    crop_area_min: float = _f(0.5, "Smallest RandomResizedCrop area, as a fraction of the frame (seed: 0.08).",
                              above=0, max=1)
    flip_ratio: float = _f(0.5, "Probability of a horizontal flip in training.", min=0, max=1)
    rand_augment: bool = _f(False, "Train with pytorchvideo's RandAugment on each clip (the same operations on every "
                                   "frame): PySlowFast's rand-m<magnitude>-n<layers>-mstd0.5.")
    rand_augment_magnitude: int = _f(9, "rand_augment: strength of each operation (PySlowFast's m).",
                                     min=0, max=10)
    rand_augment_layers: int = _f(2, "rand_augment: operations drawn per clip (PySlowFast's n).", min=1,
                                  max=14)
    random_erasing: float = _f(0.0, "Probability of erasing a random box (the same in every frame) with noise "
                                    "(PySlowFast's RE_PROB); 0: off.", min=0, max=1)
    mixup_alpha: float = _f(0.0, "MixUp each training batch with itself reversed, lambda ~ Beta(alpha, alpha); 0: "
                                 "off.", min=0)
    cutmix_alpha: float = _f(0.0, "CutMix each training batch with itself reversed, box area ~ Beta(alpha, alpha); 0: "
                                  "off.", min=0)
    mix_prob: float = _f(1.0, "mixup_alpha/cutmix_alpha: probability that a batch is mixed at all.", min=0,
                         max=1)
    mix_switch_prob: float = _f(0.5, "mixup_alpha and cutmix_alpha: probability that a mixed batch uses CutMix, not "
                                     "MixUp.", min=0, max=1)
    label_smoothing: float = _f(0.0, "Train on (1 - e) x one-hot + e / num_classes targets; validation and test use "
                                     "the labels.", min=0, below=1)

    @property
    def mixing(self) -> bool:
        """Whether training batches are mixed (MixUp, CutMix or both)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def soft_targets(self) -> bool:
        """Whether training targets are soft (mixed or smoothed): ``engine/mixing.py`` makes them."""
        return self.mixing or self.label_smoothing > 0

    def validate(self) -> None:
        if self.short_side_jitter and (len(self.short_side_jitter) != 2 or
                                       not self.crop_size <= self.short_side_jitter[0] <= self.short_side_jitter[1]):
            raise RecipeError(f"recipe key 'short_side_jitter' must be [min, max] with crop_size <= min <= max, "
                              f"got {self.short_side_jitter}")
        if self.crop_size > self.short_side:
            raise RecipeError(f"recipe key 'crop_size' ({self.crop_size}) exceeds 'short_side' ({self.short_side})")
        for switch, on, keys in (("rand_augment", self.rand_augment, ("rand_augment_magnitude", "rand_augment_layers")),
                                 ("mixup_alpha or cutmix_alpha", self.mixing, ("mix_prob",)),
                                 ("mixup_alpha and cutmix_alpha", self.mixup_alpha and self.cutmix_alpha,
                                  ("mix_switch_prob",))):
            changed = [key for key in keys if getattr(self, key) != AugmentationArgs.__dataclass_fields__[key].default]
            if changed and not on:
                raise RecipeError(f"recipe key '{changed[0]}' applies only with {switch} on; set that or drop it")
