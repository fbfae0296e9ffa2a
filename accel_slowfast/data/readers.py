"""Video index readers: which files make a split, and their labels.

Every reader returns a ``VideoIndex`` (``index.py``): 0-based labels, the class names, the file or
folder it was read from (``source``) and the listed files that do not exist (``missing``:
reported, listed in ``bad_videos.txt`` by training and left out, never fatal, so one absent
video does not stop a 13k-video run). ``accel_slowfast.data.probe`` adds per-video metadata
(frame count, fps, size, audio, errors) as a ``datasets.Dataset``.

    index = read_ucf101_split("data/ucf101/UCF-101", "data/ucf101/ucfTrainTestlist", split=1, subset="train")
    index = read_hmdb51_split("data/hmdb51/videos", "data/hmdb51/splits", split=1, subset="test")
    index = read_list_file("data/train_list.txt", data_root="data/videos")   # mmaction2 (.txt, .json) / Kinetics CSV
    index = read_class_folders("data/my_videos/train")                      # <root>/<class>/*.mp4

Input a user can fix (a malformed line, a negative label, a class folder classInd.txt does not
name, an empty set) raises ``DataError`` with one line naming ``file:line``. A video listed twice
in one file is reported, and kept or dropped (``duplicates``).
"""

import logging
import os
from pathlib import Path

from accel_slowfast.data.annotations import Entry, check_labels, read_lines, read_video_list
from accel_slowfast.data.index import SHOWN, VideoIndex
from accel_slowfast.errors import DataError
from accel_slowfast.recipe.data import DUPLICATE_VIDEOS

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


def read_ucf101_classes(annotation_dir: str | Path) -> list[str]:
    """Class names in label order from ``classInd.txt`` (``"1 ApplyEyeMakeup"``, 1-based)."""
    path = Path(annotation_dir) / "classInd.txt"
    classes = {}
    for number, line in read_lines(path, "annotation_dir"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<id> <ClassName>', got {line!r}")
        classes[int(parts[0]) - 1] = parts[1]
    if sorted(classes) != list(range(len(classes))):
        raise DataError(f"{path}: class ids must be 1..{len(classes)} without gaps")
    return [classes[i] for i in range(len(classes))]


def _check_class_folders(classes: list[str], data_root: Path, class_ind: Path) -> None:
    """Every class of ``classInd.txt`` has a folder in ``data_root`` (names compared ignoring case)."""
    if not data_root.is_dir():
        raise DataError(f"video folder {data_root} does not exist; check data_root")
    folders = {path.name.lower() for path in data_root.iterdir() if path.is_dir()}
    absent = [name for name in classes if name.lower() not in folders]
    if absent:
        raise DataError(f"{class_ind}: {len(absent)} of {len(classes)} classes have no folder in {data_root} "
                        f"(first: {', '.join(absent[:SHOWN])}); check data_root and annotation_dir")


def read_ucf101_split(data_root: str | Path, annotation_dir: str | Path, split: int, subset: str, *,
                      duplicates: str = "keep", folders: bool = False) -> VideoIndex:
    """Read UCF101's official ``trainlist0{split}.txt`` or ``testlist0{split}.txt``.

    The train list carries 1-based labels; the test list has paths only, so its labels come
    from the class folder of each path. Class names are matched case-insensitively, and a file
    is looked up case-insensitively in its folder when the exact name is absent: UCF101's
    ``HandstandPushups`` folder holds ``v_HandStandPushups_*`` files.

    Args:
        data_root: the ``UCF-101`` folder holding one sub-folder per class.
        annotation_dir: the ``ucfTrainTestlist`` folder.
        split: 1, 2 or 3.
        subset: ``"train"`` or ``"test"``.
        duplicates: a video listed twice is kept twice (``"keep"``) or once (``"drop"``).
        folders: ``data_root`` holds frame folders (``v_x.avi`` is the folder ``v_x``), as for HMDB51.
    """
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 has splits 1, 2 and 3; got split={split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    classes = read_ucf101_classes(annotation_dir)
    class_ind, data_root = Path(annotation_dir) / "classInd.txt", Path(data_root)
    _check_class_folders(classes, data_root, class_ind)
    label_of = {name.lower(): label for label, name in enumerate(classes)}
    list_path = Path(annotation_dir) / f"{subset}list0{split}.txt"
    entries, unknown = [], []
    for number, line in read_lines(list_path, "annotation_dir / split"):
        parts = line.split()
        folder = parts[0].replace("\\", "/").split("/")[0]
        label = label_of.get(folder.lower())
        if label is None:
            unknown.append(f"line {number} {folder!r}")
        elif len(parts) > 1 and (not parts[1].isdigit() or int(parts[1]) != label + 1):
            raise DataError(f"{list_path}:{number}: label {parts[1]} disagrees with folder {folder!r} "
                            f"(class {label + 1} in {class_ind})")
        else:
            entries.append(Entry(parts[0], label, f"{list_path}:{number}"))
    if unknown:
        raise DataError(f"{list_path}: {len(unknown)} lines name a class folder that is not in {class_ind} "
                        f"(first: {', '.join(unknown[:SHOWN])}); check annotation_dir")
    return _resolve(entries, data_root, classes, str(list_path), duplicates, folders)


def read_hmdb51_split(data_root: str | Path, annotation_dir: str | Path, split: int, subset: str, *,
                      duplicates: str = "keep", folders: bool = False) -> VideoIndex:
    """Read HMDB51's ``<class>_test_split<N>.txt`` files (``name.avi 1`` train, ``2`` test, ``0`` unused).

    Classes are the file-name prefixes in sorted order; videos live in ``data_root/<class>/``, or
    with ``folders`` their frame folders, named as the videos without the extension.
    """
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB51 has splits 1, 2 and 3; got split={split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    suffix = f"_test_split{split}.txt"
    files = sorted(Path(annotation_dir).glob(f"*{suffix}"))
    if not files:
        raise DataError(f"no *{suffix} files in {annotation_dir}; check annotation_dir / split")
    classes = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if subset == "train" else "2"
    entries = []
    for label, path in enumerate(files):
        for number, line in read_lines(path, "annotation_dir"):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}:{number}: expected '<video> 0|1|2', got {line!r}")
            if parts[1] == wanted:
                entries.append(Entry(f"{classes[label]}/{parts[0]}", label, f"{path}:{number}"))
    return _resolve(entries, Path(data_root), classes, f"{Path(annotation_dir) / ('*' + suffix)} ({subset})",
                    duplicates, folders)


def read_class_folders(root: str | Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> VideoIndex:
    """Index ``root/<class>/<video>``: classes are the sub-folders in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"video folder {root} does not exist; check data_root")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class sub-folders; expected {root}/<class>/<video>")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = str(root / name)
        videos = [v for v in sorted(os.listdir(folder)) if os.path.splitext(v)[1].lower() in extensions]
        paths += [os.path.join(folder, video) for video in videos]
        labels += [label] * len(videos)
    return VideoIndex.from_paths(paths, labels, classes, source=str(root))


def read_list_file(list_path: str | Path, data_root: str | Path = "", classes: list[str] | None = None, *,
                   classes_from: str = "", duplicates: str = "keep") -> VideoIndex:
    """Read a video list: ``relative/path.avi <label>`` lines, 0-based labels, or its JSON form.

    This is mmaction2's list format (text or ``--output-format json``, ``annotations.py``) and
    PySlowFast's Kinetics CSV (``path label``, separated by a space or a comma).

    Args:
        list_path: the list file.
        data_root: the folder the listed paths are relative to.
        classes: names of the labels; by default ``"0"``, ``"1"``, ... up to the largest label found.
        classes_from: where ``classes`` come from (e.g. ``"the training set train.txt"``), named when a
            label is outside them.
        duplicates: a video listed twice is kept twice (``"keep"``) or once (``"drop"``).
    """
    entries = read_video_list(list_path)
    classes = check_labels(entries, classes, classes_from)
    return _resolve(entries, Path(data_root), classes, str(list_path), duplicates)


def _resolve(entries: list[Entry], data_root: Path, classes: list[str], source: str, duplicates: str,
             folders: bool = False) -> VideoIndex:
    """The index of ``entries``: found on disk, missing, repeated."""
    paths, kept, missing = locate(entries, data_root, source, duplicates, folders)
    return VideoIndex.from_paths(paths, [entries[i].label for i in kept], classes, missing, source)


def locate(entries: list[Entry], data_root: Path, source: str, duplicates: str, folders: bool = False
           ) -> tuple[list[str], list[int], list[Path]]:
    """Where ``entries`` are on disk: the found paths, the positions of their entries, the missing paths.

    A repeated entry is reported, and kept or dropped (``duplicates``). With ``folders`` each entry
    is a frame folder named as its video without the extension (``v_x.avi``: folder ``v_x``).
    """
    if duplicates not in DUPLICATE_VIDEOS:
        raise ValueError(f"duplicates must be one of {DUPLICATE_VIDEOS}, got {duplicates!r}")
    disk = _Disk(data_root)
    paths, kept, missing, repeats, outside = [], [], [], [], []
    first_listed: dict[tuple[str, int, int], str] = {}
    for i, entry in enumerate(entries):
        relpath = os.path.splitext(entry.path)[0] if folders else entry.path
        if os.path.isabs(relpath) or os.path.normpath(relpath).split(os.sep)[0] == os.pardir:
            outside.append(entry.where)
        found = disk.find(relpath)
        where = found or str(data_root / relpath)
        key = (where, entry.offset, entry.total_frames)  # with_offset lists take several clips of one folder
        if key in first_listed:
            repeats.append(f"{entry.where} repeats {first_listed[key]}")
            if duplicates == "drop":
                continue
        else:
            first_listed[key] = entry.where
        if found is None:
            missing.append(Path(where))
        else:
            paths.append(found)
            kept.append(i)
    if repeats:
        action = ("dropped (duplicate_videos: drop)" if duplicates == "drop" else
                  "kept, so those videos are trained as often as listed; set duplicate_videos: drop to keep each once")
        logger.warning("%d duplicate entries in %s, the same video listed again (first: %s); %s",
                       len(repeats), source, ", ".join(repeats[:SHOWN]), action)
    if outside:  # read as listed (a shared video store may sit beside the lists), but never without a word
        logger.warning("%d entries of %s name files outside data_root %s, by an absolute path or '..' (first: %s); "
                       "they are read as listed", len(outside), source, data_root, ", ".join(outside[:SHOWN]))
    if missing:
        logger.warning("%d of %d videos listed in %s are missing and left out (first: %s)",
                       len(missing), len(entries), source, ", ".join(str(p) for p in missing[:SHOWN]))
    return paths, kept, missing


class _Disk:
    """Where listed files are, from one directory listing per folder instead of a ``stat`` per file.

    A ``stat`` per video is minutes for Kinetics' 650k videos on network storage; a listing is one
    call per class folder. A name matches exactly, else ignoring case (UCF101's ``HandstandPushups``
    folder holds ``v_HandStandPushups_*`` files, and its test list spells the folder both ways).
    """

    def __init__(self, root: Path):
        self.root = root
        self._folders: dict[str, str | None] = {}
        self._listings: dict[str, tuple[set[str], dict[str, str]]] = {}

    def find(self, relpath: str) -> str | None:
        """The path of ``root/relpath`` as spelled on disk, or None when there is no such file."""
        folder, _, name = relpath.replace("\\", "/").rpartition("/")
        actual = self._folder(folder)
        if actual is None:
            return None
        names, lowered = self._listing(actual)
        if name not in names:
            name = lowered.get(name.lower())
            if name is None:
                return None
        if actual == ".":
            return name
        return f"{actual}{name}" if actual.endswith("/") else f"{actual}/{name}"  # os.path.join: +0.3 s per 200k

    def _folder(self, folder: str) -> str | None:
        if folder not in self._folders:
            exact = str(self.root / folder)  # normalised, "." for an empty root and folder
            self._folders[folder] = exact if os.path.isdir(exact) else self._folder_ignoring_case(folder)
        return self._folders[folder]

    def _folder_ignoring_case(self, folder: str) -> str | None:
        current = self.root
        for part in Path(folder).parts:
            names, lowered = self._listing(str(current))
            actual = part if part in names else lowered.get(part.lower())
            if actual is None:
                return None
            current = current / actual
        return str(current)

    def _listing(self, folder: str) -> tuple[set[str], dict[str, str]]:
        if folder not in self._listings:
            try:
                names = set(os.listdir(folder))
            except OSError:  # not a folder, or unreadable: nothing is found in it
                names = set()
            self._listings[folder] = (names, {name.lower(): name for name in names})
        return self._listings[folder]
