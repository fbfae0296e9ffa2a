"""A video tree converted once for fast training, and its list files (``accel-slowfast data prepare``,
``commands/data.py``).

    accel-slowfast data prepare data/ucf101/UCF-101 data/ucf101/videos --splits data/ucf101/ucfTrainTestlist
    accel-slowfast data prepare data/ucf101/UCF-101 data/ucf101/rawframes --to frames --splits ...
    accel-slowfast data prepare data/mine/videos data/mine/videos_256          # class folders: one list

``--to videos`` (the default) re-encodes every video to a short side of 256 with a keyframe at
least every 16 frames and no audio (mmaction2's ``resize_videos.py --dense --scale 256``): a
random clip then decodes from a keyframe at most 16 frames before it instead of up to 250.
``--to frames`` writes mmaction2's rawframes, ``OUT/<Class>/<name>/img_00001.jpg`` (RGB JPEG),
which ``build_rawframes.py`` makes. The list files go beside OUT, in mmaction2's formats with
0-based labels and paths relative to OUT: ``Class/name.mp4 3`` for videos, ``Class/name 163 3``
(frame folder, frame count, label) for frames. With ``--splits`` (UCF101's ``ucfTrainTestlist``
or HMDB51's split folder) there is one per split and subset, named as mmaction2's
``build_file_list.py`` names them, ``ucf101_{train,val}_split_{1,2,3}_{videos,rawframes}.txt``;
without it SRC is class folders (``SRC/<class>/<video>``) and ``OUT.txt`` lists everything.

Runs on ``--processes`` processes (one per core) with a progress bar and its ETA (a plain line
every 30 s when the output is not a terminal). A second run skips the finished outputs, so an
interrupted one is simply run again. A video that fails is left out of the lists and written to
``OUT_failed.txt`` with its reason; the others go on, and the exit status is 1.
"""

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from accel_slowfast.data.index import VideoIndex
from accel_slowfast.data.readers import read_class_folders, read_hmdb51_split, read_ucf101_split
from accel_slowfast.data.transcode import available_encoders, count_frames, extract_frames, reencode
from accel_slowfast.errors import DataError
from accel_slowfast.progress import Progress

LIST_KINDS = {"videos": "videos", "frames": "rawframes"}  # --to: mmaction2's word in list names


@dataclass
class Job:
    """One video to convert: its source path, its output relative to OUT, and the settings."""

    source: str
    output: str
    to: str
    short_side: int
    encoder: str


def convert(job: Job, out: Path) -> tuple[int, str]:
    """``(frame count, "")`` once ``job`` is written, or ``(0, reason)`` when it failed."""
    try:
        if job.to == "videos":
            return reencode(job.source, out / job.output, short_side=job.short_side, encoder=job.encoder), ""
        return extract_frames(job.source, out / job.output, short_side=job.short_side), ""
    except Exception as error:  # noqa: BLE001 - any failure of one video is that video's reason
        return 0, f"{type(error).__name__}: {error}"


def read_source(src: Path, splits: Path | None, to: str) -> dict[str, VideoIndex]:
    """The lists to write: ``{file name: index of SRC's videos}`` (mmaction2's names with ``--splits``)."""
    kind = LIST_KINDS[to]
    if splits is None:
        return {"": read_class_folders(src)}
    if (splits / "classInd.txt").is_file():
        dataset, reader, present = "ucf101", read_ucf101_split, lambda s: (splits / f"trainlist0{s}.txt").is_file()
    elif any(splits.glob("*_test_split1.txt")):
        dataset, reader, present = "hmdb51", read_hmdb51_split, lambda s: any(splits.glob(f"*_test_split{s}.txt"))
    else:
        raise DataError(f"--splits {splits}: neither UCF101's (classInd.txt, trainlist01.txt, ...) nor HMDB51's "
                        "(<class>_test_split1.txt, ...) split files are there")
    return {f"{dataset}_{'train' if subset == 'train' else 'val'}_split_{split}_{kind}.txt":
            reader(src, splits, split, subset) for split in (1, 2, 3) if present(split) for subset in ("train", "test")}


def output_name(relpath: str, to: str) -> str:
    """Where a source video (relative to SRC) goes, relative to OUT: ``.mp4``, or a folder without extension."""
    stem = os.path.splitext(relpath)[0]
    return f"{stem}.mp4" if to == "videos" else stem


def plan(src: Path, out: Path, indexes: dict[str, VideoIndex], to: str) -> dict[str, str]:
    """``{source path: output relative to OUT}`` for every video of ``indexes``, each once."""
    outputs: dict[str, str] = {}
    for index in indexes.values():
        for path in index.paths:
            outputs.setdefault(path, output_name(os.path.relpath(path, src), to))
    seen: dict[str, str] = {}
    for path, name in outputs.items():
        if name in seen:
            raise DataError(f"{seen[name]} and {path} would both be written to {out / name}; rename one")
        seen[name] = path
    return outputs


@dataclass
class Summary:
    """What a run did: videos ``converted`` now, ``skipped`` (done before), ``failed`` ``{source: reason}``."""

    converted: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    lists: list[Path] = field(default_factory=list)
    failed_list: Path | None = None


def prepare(src: str | Path, out: str | Path, *, to: str = "videos", splits: str | Path | None = None,
            short_side: int = 256, processes: int = 1, encoder: str = "", stream=None) -> Summary:
    """Convert the videos of ``src`` into ``out`` and write the list files; see the module docstring.

    Args:
        src: the source tree (``SRC/<class>/<video>``).
        out: the output tree, made if absent; the list files go into its parent folder.
        to: ``"videos"`` (re-encoded) or ``"frames"`` (JPEG folders).
        splits: UCF101's or HMDB51's split folder, or None for class folders (one list).
        short_side: the output's short side, 0 to keep the size.
        processes: how many videos convert at once.
        encoder: the video encoder, by default the first of ``transcode.ENCODERS`` PyAV has.
        stream: where progress goes (stderr).
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"source folder {src} does not exist")
    if out.resolve().is_relative_to(src.resolve()):
        raise DataError(f"the output {out} is inside the source {src}; write it elsewhere (e.g. beside it)")
    indexes = read_source(src, Path(splits) if splits else None, to)
    outputs = plan(src, out, indexes, to)
    if to == "videos":
        encoder = encoder or available_encoders()[0]
    todo = [Job(path, name, to, short_side, encoder) for path, name in outputs.items() if not (out / name).exists()]
    summary = Summary(skipped=len(outputs) - len(todo))
    frames: dict[str, int] = {}
    progress, failed = Progress(len(todo), "prepare", unit="video", stream=stream), 0
    for job, (count, reason) in _results(todo, out, processes):
        if reason:
            summary.failed[job.source] = reason
        else:
            frames[job.source] = count
        failed += bool(reason)
        progress.update(1, failed=failed)
    progress.close()
    summary.converted = len(frames)
    if to == "frames":  # the folders a run before this one finished
        frames.update({path: count_frames(out / name) for path, name in outputs.items()
                       if path not in frames and path not in summary.failed})
    summary.lists = write_lists(out, indexes, outputs, frames if to == "frames" else None, summary.failed)
    summary.failed_list = write_failed(out, summary.failed)
    return summary


def _results(todo: list[Job], out: Path, processes: int) -> Iterator[tuple[Job, tuple[int, str]]]:
    """``(job, convert's result)`` as each finishes, on ``processes`` processes (a few jobs queued each)."""
    if processes == 1 or len(todo) < 2:
        yield from ((job, convert(job, out)) for job in todo)
        return
    jobs = iter(todo)
    with ProcessPoolExecutor(min(processes, len(todo))) as pool:
        running = {pool.submit(convert, job, out): job for job in islice(jobs, 4 * processes)}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield running.pop(future), future.result()
            running.update((pool.submit(convert, job, out), job) for job in islice(jobs, len(finished)))


def write_lists(out: Path, indexes: dict[str, VideoIndex], outputs: dict[str, str], frames: dict[str, int] | None,
                failed: dict[str, str]) -> list[Path]:
    """Write each list beside ``out`` (a temporary file renamed); failed videos are left out."""
    written = []
    for name, index in indexes.items():
        path = out.parent / (name or f"{out.name}.txt")
        lines = [f"{outputs[video]} {frames[video]} {label}" if frames is not None else f"{outputs[video]} {label}"
                 for video, label in zip(index.paths, index.labels.tolist(), strict=True) if video not in failed]
        part = path.with_name(f".{path.name}.part")
        part.write_text("".join(line + "\n" for line in lines))
        os.replace(part, path)
        written.append(path)
    return written


def write_failed(out: Path, failed: dict[str, str]) -> Path | None:
    """``OUT_failed.txt``: ``source<TAB>reason`` per failed video; removed when none failed."""
    path = out.parent / f"{out.name}_failed.txt"
    if not failed:
        path.unlink(missing_ok=True)
        return None
    path.write_text("".join(f"{source}\t{reason}\n" for source, reason in failed.items()))
    return path

