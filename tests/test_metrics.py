"""evaluation.py: mmaction2's metric definitions, the multi-view average, the confusion matrix and
per-class accuracy, and the test reports."""

import csv
from pathlib import Path

import numpy as np
import pytest

from accel_slowfast.data.index import VideoIndex, VideoRecord
from accel_slowfast.evaluation.metrics import (
    VideoScores,
    aggregate_views,
    class_names,
    classification_metrics,
    confusion_matrix,
    mean_class_accuracy,
    per_class_accuracy,
    top_k_accuracy,
    write_reports,
)


def test_top_k_accuracy_hand_computed():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 2])
    # top-1 hits: sample 0; top-2 adds sample 1 (label ranked 2nd); top-3 hits all
    assert top_k_accuracy(scores, labels, (1, 2, 3)) == [0.25, 0.5, 1.0]


def test_mean_class_accuracy_counts_a_predicted_but_absent_class_as_zero():
    # labels hold classes 0 and 1; class 2 is predicted once but never the label.
    scores = np.eye(3)[[0, 0, 1, 2]]
    labels = np.array([0, 1, 1, 1])
    # recall(0) = 1/1, recall(1) = 1/3, class 2 absent from labels but predicted -> 0
    assert mean_class_accuracy(scores, labels) == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_mean_class_accuracy_ignores_classes_neither_labelled_nor_predicted():
    scores = np.eye(5)[[0, 1, 1]]
    labels = np.array([0, 1, 0])
    assert mean_class_accuracy(scores, labels) == pytest.approx((0.5 + 1.0) / 2)


def test_classification_metrics_are_mmaction2_s_three_under_its_names():
    scores = np.eye(6)[[0, 1, 2, 3, 4, 5, 0, 0, 0, 0]]  # the argmax: right for the first 6 and for label 0
    labels = np.arange(10) % 6
    metrics = classification_metrics(scores, labels)
    assert metrics == {"top1_acc": pytest.approx(top_k_accuracy(scores, labels, (1,))[0]),
                       "top5_acc": pytest.approx(top_k_accuracy(scores, labels, (5,))[0]),
                       "mean_class_accuracy": pytest.approx(mean_class_accuracy(scores, labels))}
    assert metrics["top1_acc"] == pytest.approx(7 / 10)


@pytest.mark.parametrize("average_clips", ["prob", "score"])
def test_aggregate_views_averages_per_video_and_excludes_failed_videos(average_clips):
    scores = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    video = np.array([0, 0, 1, 1, 2, 2])
    failed = np.array([False, False, False, True, False, False])
    videos, out, bad = aggregate_views(scores, video, failed, average_clips)
    assert videos.tolist() == [0, 2] and bad.tolist() == [1]
    if average_clips == "score":
        np.testing.assert_allclose(out, [[1.0, 0.5], [1.5, 1.5]])
    else:
        softmax = lambda x: np.exp(x) / np.exp(x).sum()  # noqa: E731
        np.testing.assert_allclose(out[0], (softmax(scores[0]) + softmax(scores[1])) / 2)


def test_confusion_matrix_rows_are_true_classes():
    confusion = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    np.testing.assert_array_equal(confusion, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


def test_per_class_accuracy_is_each_rows_recall():
    confusion = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 4)
    assert per_class_accuracy(confusion, ["a", "b", "c", "d"]) == [
        ["a", 1, 1, 1.0], ["b", 2, 1, 0.5], ["c", 1, 1, 1.0], ["d", 0, 0, None]]  # d: no videos
    assert class_names(["a", "b"], 3) == ["a", "b", "2"]  # a class the index does not name


def test_reports_list_every_video_each_class_and_the_confusion_matrix(tmp_path):
    index = VideoIndex([VideoRecord(Path(f"v{i}.avi"), label) for i, label in enumerate([0, 1, 1, 2])], ["a", "b", "c"])
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.1, 0.7], [0.1, 0.45, 0.45]])  # video 2: b and c tie
    results = VideoScores(videos=np.array([0, 1, 2]), scores=scores, labels=np.array([0, 1, 1]),
                          failed=np.array([3]), num_views=8)
    written = write_reports(results, index, tmp_path)
    assert written == [tmp_path / "test_predictions.csv", tmp_path / "test_per_class.csv",
                       tmp_path / "test_confusion.png"]
    with open(tmp_path / "test_predictions.csv") as file:
        rows = [tuple(row.values()) for row in csv.DictReader(file)]  # video, label, prediction, score, correct, top5
    assert rows == [("v0.avi", "a", "a", "0.900000", "1", "a b c"), ("v1.avi", "b", "c", "0.700000", "0", "c a b"),
                    ("v2.avi", "b", "b", "0.450000", "1", "b c a"),  # a tie goes to the first class, as in top1_acc
                    ("v3.avi", "c", "", "", "", "FAILED")]  # not decoded: listed, not scored
    assert results.metrics()["top1_acc"] == pytest.approx(2 / 3)
    with open(tmp_path / "test_per_class.csv") as file:
        assert list(csv.reader(file)) == [["class", "videos", "correct", "accuracy"], ["a", "1", "1", "1.0000"],
                                          ["b", "2", "1", "0.5000"], ["c", "0", "0", ""]]
    assert (tmp_path / "test_confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
