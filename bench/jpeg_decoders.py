"""JPEG decoders for frame folders: speed per frame, and whether each gives mmcv's pixels.

Renders UCF101-like scenes (``data_throughput.render``: 320x240, a panning textured scene, moving
blobs, sensor grain), writes every frame as ``img_00001.jpg ...`` the way mmaction2's
``build_rawframes.py`` does (OpenCV's ``imwrite``, quality 95; Pillow at quality 95 when OpenCV is
not installed), then decodes all of them with each candidate, in one thread, file read included,
to a uint8 ``(H, W, 3)`` RGB tensor:

    pillow        Image.open(path).convert("RGB")
    torchvision   torchvision.io.decode_jpeg(read_file(path), mode=RGB)  (a (3, H, W) tensor, permuted)
    simplejpeg    simplejpeg.decode_jpeg(bytes, colorspace="RGB")         (when installed)
    opencv        cv2.imdecode + BGR->RGB: mmcv's default backend          (when installed)

and compares each one's pixels with the reference: mmcv's (OpenCV's), else Pillow's. Run it from
the repository root (``pip install simplejpeg opencv-python-headless`` adds those rows)::

    python bench/jpeg_decoders.py [--videos 2] [--repeats 3] [--tiny]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from data_throughput import render
from PIL import Image


def _pillow(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert("RGB")))  # writable: a copy (~20 us)


def _torchvision(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    return decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB).permute(1, 2, 0)


def _simplejpeg(path: Path) -> torch.Tensor:
    import simplejpeg

    return torch.from_numpy(simplejpeg.decode_jpeg(path.read_bytes(), colorspace="RGB"))


def _opencv(path: Path) -> torch.Tensor:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


CANDIDATES = {"pillow": _pillow, "torchvision": _torchvision, "simplejpeg": _simplejpeg, "opencv": _opencv}


def available() -> dict:
    """The candidates whose package imports here."""
    found = {}
    for name, decode in CANDIDATES.items():
        try:
            __import__({"pillow": "PIL", "opencv": "cv2"}.get(name, name))
            found[name] = decode
        except ImportError:
            print(f"{name:<12} not installed: skipped")
    return found


def write_frames(folder: Path, videos: int, frames_per_video: int) -> list[Path]:
    """The rendered scenes' frames as quality-95 JPEGs, one folder per video; their paths."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    paths = []
    for v in range(videos):
        out = folder / f"v_Bench_g01_c{v + 1:02d}"
        out.mkdir(parents=True)
        for i, frame in enumerate(render(np.random.default_rng([7, v]))[:frames_per_video]):
            paths.append(out / f"img_{i + 1:05d}.jpg")
            if cv2 is not None:
                cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # quality 95 by default
            else:
                Image.fromarray(frame).save(paths[-1], quality=95)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the frames; the fastest counts")
    parser.add_argument("--tiny", action="store_true", help="8 frames of one video, one pass (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a data-loader worker's
    decoders = available()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_frames(Path(tmp), 1 if args.tiny else args.videos, 8 if args.tiny else 10**6)
        size = sum(path.stat().st_size for path in paths) / len(paths)
        print(f"{len(paths)} frames of 320x240, {size / 1024:.1f} KiB each on average\n")
        reference_name = "opencv" if "opencv" in decoders else "pillow"
        reference = [decoders[reference_name](path) for path in paths]
        print(f"{'decoder':<12} {'us/frame':>9} {'frames/s':>9}  pixels against {reference_name} (mmcv's: opencv)")
        for name, decode in decoders.items():
            best = float("inf")
            for _ in range(1 if args.tiny else args.repeats):
                start = time.perf_counter()
                frames = [decode(path).contiguous() for path in paths]
                best = min(best, time.perf_counter() - start)
            diffs = [(frame.int() - ref.int()).abs() for frame, ref in zip(frames, reference, strict=True)]
            worst = max(int(diff.max()) for diff in diffs)
            differ = sum(int((diff > 0).sum()) for diff in diffs) / sum(diff.numel() for diff in diffs)
            same = "bitwise the same" if worst == 0 else f"max |diff| {worst}, {differ:.2%} of values differ"
            print(f"{name:<12} {best / len(paths) * 1e6:9.0f} {len(paths) / best:9.0f}  {same}")


if __name__ == "__main__":
    main()
