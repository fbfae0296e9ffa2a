"""Video index readers: which files make a split, and their labels.

Every reader returns a ``VideoIndex``: records of ``(path, label)`` with 0-based labels, the
class names, and the listed files that do not exist (``missing``: reported and left out, never
fatal, so one absent video does not stop a 13k-video run). ``accel_slowfast.data.probe`` adds
per-video metadata (frame count, fps, size, audio, errors) as a ``datasets.Dataset``.

    index = read_ucf101_split("data/ucf101/UCF-101", "data/ucf101/ucfTrainTestlist", split=1, subset="train")
    index = read_hmdb51_split("data/hmdb51/videos", "data/hmdb51/splits", split=1, subset="test")
    index = read_list_file("data/train_list.txt", data_root="data/videos")   # mmaction2 / Kinetics CSV
    index = read_class_folders("data/my_videos/train")                      # <root>/<class>/*.mp4
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class VideoRecord:
    """One video of an index: an absolute-or-root-relative ``path`` and a 0-based ``label``."""

    path: Path
    label: int


@dataclass
class VideoIndex:
    """The videos of one split: ``records`` in file order, ``classes`` by label, ``missing`` files."""

    records: list[VideoRecord]
    classes: list[str]
    missing: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


def _read_lines(path: Path) -> list[str]:
    """Non-empty lines of a split file, any line ending (UCF101's files use CRLF)."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist; check `annotation_dir` / `split`")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_ucf101_classes(annotation_dir: str | Path) -> list[str]:
    """Class names in label order from ``classInd.txt`` (``"1 ApplyEyeMakeup"``, 1-based)."""
    path = Path(annotation_dir) / "classInd.txt"
    classes = {}
    for number, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{number}: expected '<id> <ClassName>', got {line!r}")
        classes[int(parts[0]) - 1] = parts[1]
    if sorted(classes) != list(range(len(classes))):
        raise ValueError(f"{path}: class ids must be 1..{len(classes)} without gaps")
    return [classes[i] for i in range(len(classes))]


def read_ucf101_split(data_root: str | Path, annotation_dir: str | Path, split: int, subset: str) -> VideoIndex:
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
    """
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 has splits 1, 2 and 3; got split={split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    classes = read_ucf101_classes(annotation_dir)
    label_of = {name.lower(): label for label, name in enumerate(classes)}
    list_path = Path(annotation_dir) / f"{subset}list0{split}.txt"
    entries = []
    for number, line in enumerate(_read_lines(list_path), 1):
        parts = line.split()
        folder = parts[0].replace("\\", "/").split("/")[0]
        if folder.lower() not in label_of:
            raise ValueError(f"{list_path}:{number}: class folder {folder!r} is not in classInd.txt")
        label = label_of[folder.lower()]
        if len(parts) > 1 and int(parts[1]) - 1 != label:
            raise ValueError(f"{list_path}:{number}: label {parts[1]} disagrees with folder {folder!r}")
        entries.append((parts[0], label))
    return _resolve(entries, Path(data_root), classes, list_path)


def read_hmdb51_split(data_root: str | Path, annotation_dir: str | Path, split: int, subset: str) -> VideoIndex:
    """Read HMDB51's ``<class>_test_split<N>.txt`` files (``name.avi 1`` train, ``2`` test, ``0`` unused).

    Classes are the file-name prefixes in sorted order; videos live in ``data_root/<class>/``.
    """
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB51 has splits 1, 2 and 3; got split={split}")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    suffix = f"_test_split{split}.txt"
    files = sorted(Path(annotation_dir).glob(f"*{suffix}"))
    if not files:
        raise FileNotFoundError(f"no *{suffix} files in {annotation_dir}; check `annotation_dir` / `split`")
    classes = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if subset == "train" else "2"
    entries = []
    for label, path in enumerate(files):
        for number, line in enumerate(_read_lines(path), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{number}: expected '<video> 0|1|2', got {line!r}")
            if parts[1] == wanted:
                entries.append((f"{classes[label]}/{parts[0]}", label))
    return _resolve(entries, Path(data_root), classes, Path(annotation_dir))


def read_class_folders(root: str | Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> VideoIndex:
    """Index ``root/<class>/<video>``: classes are the sub-folders in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist; check `data_root`")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected {root}/<class>/<video>")
    records = [VideoRecord(path, label) for label, name in enumerate(classes)
               for path in sorted((root / name).iterdir()) if path.suffix.lower() in extensions]
    return VideoIndex(records, classes)


def read_list_file(
    list_path: str | Path, data_root: str | Path = "", classes: list[str] | None = None
) -> VideoIndex:
    """Read a video list: ``relative/path.avi <label>`` per line, 0-based labels.

    This is mmaction2's list format and PySlowFast's Kinetics CSV (``path label``, separated by
    a space or a comma). ``classes`` names the labels; by default they are named ``"0"``,
    ``"1"``, ... up to the largest label found.
    """
    list_path = Path(list_path)
    entries = []
    for number, line in enumerate(_read_lines(list_path), 1):
        parts = [part.strip() for part in (line.rsplit(",", 1) if "," in line else line.rsplit(maxsplit=1))]
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{list_path}:{number}: expected '<path> <label>', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    if classes is None:
        classes = [str(i) for i in range(max((label for _, label in entries), default=-1) + 1)]
    for number, (_, label) in enumerate(entries, 1):
        if not 0 <= label < len(classes):
            raise ValueError(f"{list_path}:{number}: label {label} outside 0..{len(classes) - 1}")
    return _resolve(entries, Path(data_root), classes, list_path)


def _resolve(entries: list[tuple[str, int]], data_root: Path, classes: list[str], source: Path) -> VideoIndex:
    records, missing = [], []
    listings: dict[Path, dict[str, str]] = {}
    for relpath, label in entries:
        path = data_root / relpath
        found = path if path.exists() else _find_ignoring_case(data_root, relpath, listings)
        if found is None:
            missing.append(path)
        else:
            records.append(VideoRecord(found, label))
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        logger.warning(
            "%d of %d videos listed in %s are missing and left out (first: %s)",
            len(missing), len(entries), source, shown,
        )
    return VideoIndex(records, classes, missing)


def _find_ignoring_case(root: Path, relpath: str, listings: dict[Path, dict[str, str]]) -> Path | None:
    """``root / relpath`` matching each part case-insensitively (``listings`` caches folder contents)."""
    current = root
    for part in Path(relpath.replace("\\", "/")).parts:
        if current not in listings:
            names = [p.name for p in current.iterdir()] if current.is_dir() else []
            listings[current] = {name.lower(): name for name in names}
        actual = listings[current].get(part.lower())
        if actual is None:
            return None
        current = current / actual
    return current
