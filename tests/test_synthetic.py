import av
import numpy as np
import pytest
from conftest import TINY_SPEC

from accel_slowfast.data.readers import read_ucf101_split
from accel_slowfast.data.synthetic import CLASSES, COMPLETE_MARKER, SyntheticSpec, _background, ensure_synthetic, render


def test_layout_split_files_and_disjoint_groups(tiny_root):
    lists = tiny_root / "ucfTrainTestlist"
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        raw = (lists / name).read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n") > 0, f"{name} must use CRLF line endings"
    train = read_ucf101_split(tiny_root, lists, 1, "train")
    test = read_ucf101_split(tiny_root, lists, 1, "test")
    assert len(train) == 5 * 2 * 2 and len(test) == 5 * 1 * 2 and not train.missing and not test.missing
    groups = lambda index: {r.path.name.split("_g")[1][:2] for r in index.records}  # noqa: E731
    assert groups(train) == {"02", "03"} and groups(test) == {"01"}
    assert train.classes == list(CLASSES)
    for record in train.records:
        assert record.path.parent.name == CLASSES[record.label]
        assert record.path.name.startswith(f"v_{CLASSES[record.label]}_g")
    with av.open(str(train.records[0].path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == TINY_SPEC.num_frames and frames[0].shape == (TINY_SPEC.height, TINY_SPEC.width, 3)


def test_generated_once_and_deterministic(tiny_root, tmp_path):
    stamp = (tiny_root / COMPLETE_MARKER).stat().st_mtime_ns
    assert ensure_synthetic(TINY_SPEC, cache_dir=tiny_root.parent) == tiny_root
    assert (tiny_root / COMPLETE_MARKER).stat().st_mtime_ns == stamp
    again = ensure_synthetic(TINY_SPEC, cache_dir=tmp_path)
    for rel in ("MoveUp/v_MoveUp_g02_c01.avi", "ucfTrainTestlist/trainlist01.txt"):
        assert (again / rel).read_bytes() == (tiny_root / rel).read_bytes()


def _square_track(frames, background):
    """Centre (y, x) and size of the pixels that differ from the background, per frame."""
    tracks = []
    for frame in frames:
        ys, xs = np.nonzero(np.abs(frame.astype(int) - background.astype(int)).sum(-1) > 0)
        tracks.append((ys.mean(), xs.mean(), len(ys)))
    return np.array(tracks)


@pytest.mark.parametrize("name", CLASSES)
def test_classes_differ_only_in_motion(name):
    spec = SyntheticSpec()
    background = _background(np.random.default_rng(0), spec)
    track = _square_track(render(name, background, np.random.default_rng(1), spec), background)
    dy, dx, darea = track[-1] - track[0]
    moves = {"MoveDown": dy > 10, "MoveUp": dy < -10, "MoveSideways": abs(dx) > 10 and abs(dy) < 1,
             "ZoomIn": darea > 0, "ZoomOut": darea < 0}
    assert moves[name]
    # the square always stays inside the central square of the frame
    left = (spec.width - spec.height) / 2
    assert (track[:, 1] > left).all() and (track[:, 1] < left + spec.height).all()


def test_a_frame_at_a_random_time_carries_no_class_information():
    """Over all frames of many videos, position and size distributions match between classes:
    MoveUp is MoveDown played backwards, so only the order of frames tells them apart."""
    spec = SyntheticSpec()
    background = _background(np.random.default_rng(0), spec)
    tracks = {name: np.concatenate([_square_track(render(name, background, np.random.default_rng(i), spec), background)
                                    for i in range(100)]) for name in ("MoveUp", "MoveDown")}
    up, down = tracks["MoveUp"].mean(axis=0), tracks["MoveDown"].mean(axis=0)
    assert abs(up[0] - down[0]) < 2 and abs(up[1] - down[1]) < 2  # mean centre, in px
    assert abs(up[2] - down[2]) / up[2] < 0.1  # mean area


@pytest.mark.parametrize("damage", ["video cut short", "video deleted", "marker garbled"])
def test_a_damaged_dataset_is_moved_aside_and_generated_again(tmp_path, damage, caplog):
    root = ensure_synthetic(TINY_SPEC, cache_dir=tmp_path)
    video = root / "MoveUp/v_MoveUp_g02_c01.avi"
    original = video.read_bytes()
    if damage == "video cut short":
        video.write_bytes(original[:100])
    elif damage == "video deleted":
        video.unlink()
    else:
        (root / COMPLETE_MARKER).write_bytes(b"\xff\x00")
    with caplog.at_level("WARNING"):
        assert ensure_synthetic(TINY_SPEC, cache_dir=tmp_path) == root
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (aside,) = tmp_path.glob(f"{root.name}.damaged-*")
    assert str(root) in warning and str(aside) in warning
    assert video.read_bytes() == original
