"""A built-in video dataset in the UCF101 layout whose classes differ only in motion.

Every video shows one flat-coloured square over a textured background. Colour, size, start
position, speed and background are drawn at random for every video, identically for every
class; only *how the square moves* depends on the class (up, down, sideways, growing,
shrinking). A single frame therefore carries no class information: a model that scores well
has learned temporal structure. The classes are unchanged by a horizontal flip ("sideways" is
left or right at random), so the seed's flip augmentation stays on.

The square moves inside the central square of the frame, which a centre crop keeps whole, and
never wraps around an edge (objects that do make the task unlearnable from few videos).
The background texture is shared by the clips of one group (UCF101's "same actor/scene"
unit), so the test split's backgrounds are never seen in training.

Layout written (UCF101's: class folders, 1-based ``classInd.txt``, CRLF split files)::

    OUT_DIR/<Class>/v_<Class>_gXX_cYY.avi          MPEG-4 in AVI, 25 fps
    OUT_DIR/ucfTrainTestlist/classInd.txt          "1 MoveDown" ... (1-based)
    OUT_DIR/ucfTrainTestlist/trainlist01.txt       "MoveDown/v_MoveDown_g08_c01.avi 1"
    OUT_DIR/ucfTrainTestlist/testlist01.txt        "MoveDown/v_MoveDown_g01_c01.avi"

Run it by itself::

    python -m accel_slowfast.data.synthetic OUT_DIR [--seed 0]
"""

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

CLASSES = ("MoveDown", "MoveSideways", "MoveUp", "ZoomIn", "ZoomOut")
COMPLETE_MARKER = ".complete"  # written last: every file's size, as JSON

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticSpec:
    """What ``generate`` writes; part of the cache key, so changing it regenerates."""

    seed: int = 0
    width: int = 96
    height: int = 72
    num_frames: int = 48
    fps: int = 25
    num_groups: int = 25
    clips_per_group: int = 4
    test_groups: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # UCF101 split 1 holds out groups 1-7

    @property
    def cache_name(self) -> str:
        size = f"{self.width}x{self.height}x{self.num_frames}"
        return f"synthetic-v4-s{self.seed}-{size}-g{self.num_groups}c{self.clips_per_group}"


def default_cache_dir() -> Path:
    """``$ACCEL_SLOWFAST_CACHE`` or ``~/.cache/accel_slowfast``."""
    return Path(os.environ.get("ACCEL_SLOWFAST_CACHE", Path.home() / ".cache" / "accel_slowfast"))


def ensure_synthetic(spec: SyntheticSpec = SyntheticSpec(), cache_dir: str | Path | None = None) -> Path:
    """Return the dataset root for ``spec``, generating it on first use.

    Generation writes into a temporary sibling folder that is renamed when complete, so an
    interrupted generation is never mistaken for a finished one, and concurrent callers
    (one per process under ``accelerate launch``) end with the same files.
    """
    root = Path(cache_dir or default_cache_dir()) / spec.cache_name
    if _intact(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=root.name + ".tmp-", dir=root.parent))
    try:
        generate(staging, spec)
        sizes = {str(path.relative_to(staging)): path.stat().st_size for path in staging.rglob("*") if path.is_file()}
        (staging / COMPLETE_MARKER).write_text(json.dumps(sizes, indent=0, sort_keys=True))
        os.rename(staging, root)
    except OSError:
        if not (root / COMPLETE_MARKER).exists():  # another process did not finish it either
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _intact(root: Path) -> bool:
    """Whether ``root`` holds a finished dataset whose files all have the sizes the marker records.

    A dataset damaged after it was written (a video deleted or cut short, the cache partly cleaned)
    is moved aside with a warning naming it, and generated again, rather than failing every run.
    """
    if not root.exists():
        return False
    try:
        sizes = json.loads((root / COMPLETE_MARKER).read_text())
        damaged = [name for name, size in sizes.items() if not os.path.isfile(root / name)
                   or os.path.getsize(root / name) != size]
        if not damaged:
            return True
        problem = f"{len(damaged)} of its {len(sizes)} files are missing or changed (first: {damaged[0]})"
    except (OSError, ValueError, AttributeError) as error:
        problem = f"its marker {COMPLETE_MARKER} cannot be read ({type(error).__name__})"
    aside = root.with_name(f"{root.name}.damaged-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(root, aside)
    except OSError:  # another process moved it first
        return False
    logger.warning("the synthetic dataset %s is damaged: %s; moved it to %s and generating it again",
                   root, problem, aside)
    return False


def generate(out_dir: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> None:
    """Write every video and the split files of ``spec`` under ``out_dir``."""
    out_dir = Path(out_dir)
    lists = out_dir / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    train_lines, test_lines = [], []
    for label, name in enumerate(CLASSES):
        (out_dir / name).mkdir(exist_ok=True)
        for group in range(1, spec.num_groups + 1):
            background = _background(np.random.default_rng([spec.seed, group]), spec)
            for clip in range(1, spec.clips_per_group + 1):
                relpath = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                rng = np.random.default_rng([spec.seed, group, clip, label])
                write_video(out_dir / relpath, render(name, background, rng, spec), spec.fps)
                if group in spec.test_groups:
                    test_lines.append(relpath)
                else:
                    train_lines.append(f"{relpath} {label + 1}")
    _write_crlf(lists / "classInd.txt", [f"{i + 1} {name}" for i, name in enumerate(CLASSES)])
    _write_crlf(lists / "trainlist01.txt", train_lines)
    _write_crlf(lists / "testlist01.txt", test_lines)


def render(name: str, background: np.ndarray, rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 of one video of class ``name``."""
    h, w, t = spec.height, spec.width, spec.num_frames
    colour = rng.integers(0, 256, size=3)
    while np.abs(colour.astype(int) - 128).max() < 100:  # keep the square visible on the texture
        colour = rng.integers(0, 256, size=3)
    progress = np.linspace(0.0, 1.0, t)
    # All motion stays inside the central h x h square, which a centre crop keeps whole.
    left = (w - h) / 2
    if name.startswith("Zoom"):
        small, large = rng.uniform(0.2, 0.28) * h, rng.uniform(0.6, 0.7) * h
        sizes = small + (large - small) * (progress if name == "ZoomIn" else 1 - progress)
        cy = rng.uniform(large / 2, h - large / 2) * np.ones(t)
        cx = left + rng.uniform(large / 2, h - large / 2) * np.ones(t)
    else:
        size = rng.uniform(0.3, 0.4) * h
        sizes = np.full(t, size)
        travel = rng.uniform(0.75, 1.0) * (h - size)  # the whole path stays inside the square
        path = rng.uniform(size / 2, h - size / 2 - travel) + travel * progress
        if name == "MoveUp" or (name == "MoveSideways" and rng.random() < 0.5):
            path = path[::-1]
        across = rng.uniform(size / 2, h - size / 2) * np.ones(t)
        cx, cy = (left + path, across) if name == "MoveSideways" else (left + across, path)
    frames = np.repeat(background[None], t, axis=0)
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    for i in range(t):
        half = sizes[i] / 2
        inside = (np.abs(ys - cy[i]) <= half) & (np.abs(xs - cx[i]) <= half)
        frames[i][inside] = colour
    return frames


def _background(rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """A random texture ``(H, W, 3)`` uint8: 12-px blocks of muted colours, plus a little grain."""
    coarse = rng.uniform(90, 166, size=(spec.height // 12 + 1, spec.width // 12 + 1, 3))
    texture = np.kron(coarse, np.ones((12, 12, 1)))[: spec.height, : spec.width]
    texture += rng.normal(0, 4, size=texture.shape)
    return np.clip(texture, 0, 255).astype(np.uint8)


def write_video(path: str | Path, frames: np.ndarray, fps: int, codec: str = "mpeg4") -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to ``path`` with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_crlf(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    generate(args.out_dir, SyntheticSpec(seed=args.seed))
    print(f"wrote {len(CLASSES)} classes in the UCF101 layout to {args.out_dir}")


if __name__ == "__main__":
    main()
