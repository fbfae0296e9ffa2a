import numpy as np
import pytest

from accel_slowfast.metrics import classification_metrics, mean_class_accuracy, top_k_accuracy


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


def test_classification_metrics_keys():
    scores = np.random.default_rng(0).random((10, 6))
    metrics = classification_metrics(scores, np.arange(10) % 6)
    assert set(metrics) == {"top1_acc", "top5_acc", "mean_class_accuracy"}
