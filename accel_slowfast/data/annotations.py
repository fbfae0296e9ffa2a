"""mmaction2's annotation files: video lists, frame-folder lists (text or JSON) and label maps.

    entries = read_video_list("data/ucf101/ucf101_train_split_1_videos.json")     # [Entry(path, label, where)]
    entries = read_frame_list("data/ucf101/ucf101_train_split_1_rawframes.txt")   # + total_frames, offset
    classes = read_label_map("data/kinetics400/label_map_k400.txt")               # names by label

The formats, as mmaction2's ``build_file_list.py`` writes them (one item a line, labels 0-based;
``--output-format json`` writes a JSON list of objects instead):

============== ================================ ==========================================================
videos         ``Class/name.avi 3``             ``{"filename": "Class/name.avi", "label": 3}``
frame folders  ``Class/name 163 3``             ``{"frame_dir": "Class/name", "total_frames": 163, "label": 3}``
with offset    ``Class/name 12 163 3``          the same with ``"offset": 12``
============== ================================ ==========================================================

A file whose name ends in ``.json`` is read as JSON, any other as text; a text frame list whose
first line has four fields is read with offsets (mmaction2's ``with_offset``). Video lists also
take PySlowFast's Kinetics CSV (``path,label``). A label map is one class name a line (mmaction2's
``label_map_k400.txt``), or UCF101's ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based).

Malformed input raises ``DataError`` with one line naming the file and the line (``file:12``) or
the JSON entry (``file: entries[11]``), never the file's content.
"""

import json
import re
from pathlib import Path
from typing import NamedTuple

from accel_slowfast.errors import DataError

SHOWN_CHARS = 80  # of a malformed line, in its error


class Entry(NamedTuple):
    """One listed video or frame folder: where it is, its label and where it was listed."""

    path: str
    label: int
    where: str  # "file:line" or "file: entries[i]", for messages
    total_frames: int = -1  # frame folders: frames to read (-1: count the folder's frames)
    offset: int = 0  # frame folders: frames to skip (with_offset)


def read_lines(path: Path, keys: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of the non-empty lines of a text file, any line ending (UCF101's use CRLF).

    Args:
        path: the file.
        keys: the recipe keys that name it, for the error when it is absent.
    """
    if not path.is_file():
        raise DataError(f"annotation file {path} does not exist; check {keys}")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file; check {keys}") from None
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _shown(line: str) -> str:
    return repr(line if len(line) <= SHOWN_CHARS else line[:SHOWN_CHARS] + "...")


def _json_entries(path: Path, keys: str) -> list[dict]:
    """The objects of a JSON list file; ``DataError`` for anything else."""
    if not path.is_file():
        raise DataError(f"annotation file {path} does not exist; check {keys}")
    try:
        items = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise DataError(f"{path} is not valid JSON ({type(error).__name__}{where}); check {keys}") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of objects (mmaction2's --output-format json), "
                        f"got a JSON {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(f"{path}: entries[{i}] is a JSON {type(item).__name__}, not an object")
    return items


def _field(path: Path, i: int, item: dict, key: str, kind: type, default=None):
    """``item[key]`` checked to be a ``kind`` (an int: not a bool, and not negative)."""
    if key not in item:
        if default is not None:
            return default
        raise DataError(f"{path}: entries[{i}] has no {key!r} (keys: {', '.join(sorted(item))})")
    value = item[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or (key != "label" and value < 0)):
        what = "a list: multi-label entries are not supported" if isinstance(value, list) else repr(value)[:20]
        raise DataError(f"{path}: entries[{i}]: {key!r} must be {'an' if key == 'label' else 'a non-negative'} "
                        f"integer, got {what}")
    if kind is str and (not isinstance(value, str) or not value):
        raise DataError(f"{path}: entries[{i}]: {key!r} must be a non-empty string")
    return value


def read_video_list(list_path: str | Path) -> list[Entry]:
    """The entries of a video list: text ``path label`` (or ``path,label``) lines, or JSON ``filename``/``label``."""
    path, keys = Path(list_path), "train_list / val_list"
    if path.suffix.lower() == ".json":
        entries = []
        for i, item in enumerate(_json_entries(path, keys)):
            if "frame_dir" in item and "filename" not in item:
                raise DataError(f"{path}: entries[{i}] names a frame folder ('frame_dir'): set dataset: rawframes")
            entries.append(Entry(_field(path, i, item, "filename", str), _field(path, i, item, "label", int),
                                 f"{path}: entries[{i}]"))
        return entries
    entries = []
    for number, line in read_lines(path, keys):
        parts = [part.strip() for part in line.rsplit(",", 1)] if "," in line else line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected '<path> <label>', got {_shown(line)}")
        fields = line.split()
        if len(fields) in (3, 4) and all(field.isdigit() for field in fields[1:]) and not Path(fields[0]).suffix:
            raise DataError(f"{path}:{number}: this is a frame-folder list ('frame_dir [offset] total_frames "
                            "label', mmaction2's rawframes list): set dataset: rawframes")
        entries.append(Entry(parts[0], int(parts[1]), f"{path}:{number}"))
    return entries


def read_frame_list(list_path: str | Path) -> list[Entry]:
    """The entries of a frame-folder list: text ``frame_dir [offset] total_frames label`` lines, or JSON
    ``frame_dir``/``total_frames``/``label`` (and ``offset``)."""
    path, keys = Path(list_path), "train_list / val_list"
    if path.suffix.lower() == ".json":
        entries = []
        for i, item in enumerate(_json_entries(path, keys)):
            if "filename" in item and "frame_dir" not in item:
                raise DataError(f"{path}: entries[{i}] names a video file ('filename'): set dataset: list")
            entries.append(Entry(_field(path, i, item, "frame_dir", str), _field(path, i, item, "label", int),
                                 f"{path}: entries[{i}]", _field(path, i, item, "total_frames", int),
                                 _field(path, i, item, "offset", int, default=0)))
        return entries
    lines = read_lines(path, keys)
    width = len(lines[0][1].split()) if lines else 3  # 4: with_offset, for every line of the file
    layout = "frame_dir offset total_frames label" if width == 4 else "frame_dir total_frames label"
    entries = []
    for number, line in lines:
        fields = line.split()
        if len(fields) != width or width not in (3, 4) or not all(f.lstrip("-").isdigit() for f in fields[1:]):
            hint = "; a video list? set dataset: list" if len(fields) == 2 else ""
            raise DataError(f"{path}:{number}: expected '{layout}' (as line {lines[0][0]}), got {_shown(line)}{hint}")
        numbers = [int(field) for field in fields[1:]]
        if min(numbers[:-1]) < 0:
            raise DataError(f"{path}:{number}: frame counts and offsets cannot be negative, got {_shown(line)}")
        offset, total = numbers[:-1] if width == 4 else (0, numbers[0])
        entries.append(Entry(fields[0], numbers[-1], f"{path}:{number}", total, offset))
    return entries


def check_labels(entries: list[Entry], classes: list[str] | None, classes_from: str = "") -> list[str]:
    """The class names of ``entries``: ``classes`` when given (every label must be one of them), else
    ``"0"``, ``"1"``, ... up to the largest label. ``classes_from`` names where ``classes`` came from."""
    if classes is None:
        classes = [str(i) for i in range(max((entry.label for entry in entries), default=-1) + 1)]
    count = f"{len(classes)} classes, labels 0..{len(classes) - 1}"
    for entry in entries:
        if entry.label < 0:
            raise DataError(f"{entry.where}: label {entry.label} is negative; labels are 0-based class ids ({count})")
        if entry.label >= len(classes):
            where = f"a class of {classes_from}, which has" if classes_from else "one of the"
            raise DataError(f"{entry.where}: label {entry.label} is not {where} {count}")
    return classes


CLASS_IND = re.compile(r"(\d+)\s+(\S+)")  # UCF101's classInd.txt: "1 ApplyEyeMakeup"


def read_label_map(path: str | Path) -> list[str]:
    """Class names by label: one name a line (mmaction2's label maps), or UCF101's ``classInd.txt``."""
    path = Path(path)
    lines = read_lines(path, "label_map")
    if not lines:
        raise DataError(f"label_map {path} names no class; give one class name a line")
    numbered = [CLASS_IND.fullmatch(line) for _, line in lines]
    if all(numbered) and [int(match[1]) for match in numbered] == list(range(1, len(lines) + 1)):
        names = [match[2] for match in numbered]  # classInd.txt: ids 1..N in order
    else:
        names = [line for _, line in lines]
    seen: dict[str, int] = {}
    for (number, _), name in zip(lines, names, strict=True):
        if name in seen:
            raise DataError(f"{path}:{number}: class {_shown(name)} is named again (first on line {seen[name]})")
        seen[name] = number
    return names
