"""Metrics against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from training import accuracy, classification_report, confusion_matrix, precision_recall_f1
from training.metrics import format_confusion_matrix, predictions_from_outputs


def test_confusion_matrix_and_scores() -> None:
    y_true = torch.tensor([0, 0, 1, 1, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    scores = precision_recall_f1(cm)
    assert scores["precision"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert scores["recall"] == pytest.approx([0.5, 1.0, 0.5])
    assert scores["f1"] == pytest.approx([0.5, 0.8, 2 / 3])
    assert scores["support"] == [2, 2, 2]
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_never_predicted_class_scores_zero_not_nan() -> None:
    scores = precision_recall_f1(confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 0]), 2))
    assert scores["precision"][1] == 0.0 and scores["f1"][1] == 0.0


def test_labels_out_of_range_are_reported() -> None:
    with pytest.raises(ValueError, match=r"y_true should hold labels in 0\.\.1, but got values 0\.\.2"):
        confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)


def test_predictions_from_one_logit_and_many() -> None:
    assert predictions_from_outputs(torch.tensor([-0.1, 0.2])).tolist() == [0, 1]
    assert predictions_from_outputs(torch.tensor([[0.1, 0.9], [2.0, 0.0]])).tolist() == [1, 0]


def test_text_tables_name_the_classes() -> None:
    cm = torch.tensor([[5, 1], [0, 4]])
    assert "spam" in classification_report(cm, ["ham", "spam"])
    assert format_confusion_matrix(cm, ["ham", "spam"]).splitlines()[1].split() == ["ham", "5", "1"]
