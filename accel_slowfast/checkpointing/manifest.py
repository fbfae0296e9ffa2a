"""A checkpoint folder's manifest (``meta.json``): written last, read by one parser, checked before
anything loads, and how the newest intact checkpoint of a work_dir is found.

``meta.json`` is written last, inside the staging folder, which is then renamed: a folder with
a ``meta.json`` was complete when written. It holds the runner's position (``epoch``,
``inner_iter``, ``iter``, ``meta``, ``log_history``: ``Runner.state_dict``), the run's id, the
number of processes, and the size and SHA-256 of every other file, so damage found later (a
truncated copy, a disk error) is caught before anything is loaded:

    from accel_slowfast.checkpointing.manifest import verify_checkpoint
    verify_checkpoint("work_dirs/x/checkpoints/epoch_4")    # CheckpointError naming a damaged file
"""

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from accel_slowfast.checkpointing.names import CHECKPOINT_DIR, EPOCH_PREFIX, ITER_PREFIX, META_FILE
from accel_slowfast.errors import CheckpointError

logger = logging.getLogger("accel_slowfast")


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` and the size and SHA-256 of every file of ``folder`` to its ``meta.json``."""
    files = {path.name: {"bytes": path.stat().st_size, "sha256": sha256(path)}
             for path in sorted(folder.iterdir()) if path.is_file() and path.name != META_FILE}
    partial = folder / f"{META_FILE}.partial"
    partial.write_text(json.dumps({**meta, "files": files}, indent=2))
    os.replace(partial, folder / META_FILE)


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint folder; ``CheckpointError`` if it is absent or unreadable
    (not JSON, not an object, no integer ``iter``). The one reader of ``meta.json``."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint {folder} is incomplete: it has no {META_FILE} (its save did not finish)")
    try:
        meta = json.loads(path.read_text())
        int(meta["iter"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {folder} is damaged: {path} does not read ({error})") from None
    return meta


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check every file ``meta.json`` lists against its recorded size and SHA-256; return the meta.

    Raises ``CheckpointError`` naming the first file that is missing, truncated or changed.
    Folders written before manifests existed (no ``files`` entry) are accepted unverified.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder} does not exist" if not folder.exists() else
                              f"checkpoint {folder} is a file, not a checkpoint folder (checkpoints/epoch_N or "
                              "iter_N); to start from a weights file use --load_from")
    meta = read_meta(folder)
    for name, record in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is damaged: {path} is missing")
        size = path.stat().st_size
        if size != record["bytes"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: {path} has {size} bytes, {record['bytes']} were "
                                  "written (truncated or overwritten)")
        if sha256(path) != record["sha256"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: the content of {path} differs from what was "
                                  "written (its SHA-256 changed)")
    return meta


def sorted_checkpoints(root: Path, run_id: str | None = None) -> list[Path]:
    """Epoch and iteration checkpoint folders under ``root`` with a ``meta.json`` (with ``run_id``:
    only those that run wrote), oldest (fewest iterations) first; at equal iterations an epoch
    checkpoint counts as newer. Folders whose ``meta.json`` does not read sort first (they are the
    least trustworthy) and belong to no run."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith((EPOCH_PREFIX, ITER_PREFIX)) and (path / META_FILE).exists():
            try:
                meta = read_meta(path)
                position, owner = int(meta["iter"]), meta.get("run_id")
            except CheckpointError:
                position, owner = -1, None
            if run_id is None or owner == run_id:
                found.append((position, path.name.startswith(EPOCH_PREFIX), path.name, path))
    return [path for *_, path in sorted(found)]


def find_resume_checkpoint(work_dir: str | Path) -> Path | None:
    """The newest intact checkpoint of ``work_dir`` (for ``resume_from: auto``), or None.

    Newer checkpoints that are damaged or incomplete are skipped with a warning naming them.
    """
    root = Path(work_dir) / CHECKPOINT_DIR
    complete = sorted_checkpoints(root)
    named = [p for p in root.iterdir() if p.is_dir() and p.name.startswith((EPOCH_PREFIX, ITER_PREFIX))] \
        if root.is_dir() else []
    for path in sorted(set(named) - set(complete)):
        logger.warning("resume_from=auto: skipping %s: it has no %s (its save did not finish)", path, META_FILE)
    for path in reversed(complete):
        try:
            verify_checkpoint(path)
        except CheckpointError as error:
            logger.warning("resume_from=auto: skipping %s", error)
            continue
        return path
    return None
