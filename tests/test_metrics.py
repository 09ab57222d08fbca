import numpy as np
import pytest

from pipeline.metrics import mean_score, per_task


def test_roc_auc_masks_missing_labels():
    truth = np.array([[1, np.nan], [0, 1], [1, 0], [0, np.nan]])
    predicted = np.array([[0.9, 0.0], [0.1, 0.8], [0.8, 0.3], [0.2, 1.0]])
    scores = per_task(truth, predicted, "classification")
    assert scores == [1.0, 1.0]


def test_single_class_task_is_undefined_with_a_warning_not_half():
    truth = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    predicted = np.array([[0.9, 0.2], [0.1, 0.3], [0.7, 0.4]])
    with pytest.warns(UserWarning, match="ROC-AUC undefined for task 'b'"):
        scores = per_task(truth, predicted, "classification", ["a", "b"])
    assert scores[0] == 1.0 and np.isnan(scores[1])
    assert mean_score(scores) == 1.0


def test_rmse_per_task_on_observed_values():
    truth = np.array([[1.0], [np.nan], [3.0]])
    predicted = np.array([[2.0], [100.0], [3.0]])
    assert per_task(truth, predicted, "regression") == [pytest.approx(np.sqrt(0.5))]
