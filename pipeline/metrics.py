"""ROC-AUC and RMSE per task, on observed labels only.

A task whose labels in a split are all one class has no ROC-AUC: it is reported as NaN
with a warning, never as a crash or a made-up 0.5, and the mean skips it.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import roc_auc_score


def per_task(
    y_true: np.ndarray, y_pred: np.ndarray, task_type: str, task_names: list[str] | None = None, where: str = ""
) -> list[float]:
    """One score per task column; NaN where the metric is undefined."""
    scores = []
    for task in range(y_true.shape[1]):
        observed = ~np.isnan(y_true[:, task])
        truth, predicted = y_true[observed, task], y_pred[observed, task]
        name = task_names[task] if task_names else str(task)
        if task_type == "classification":
            if len(np.unique(truth)) < 2:
                warnings.warn(
                    f"ROC-AUC undefined for task {name!r}{where}: only one class among {len(truth)} observed labels",
                    stacklevel=2,
                )
                scores.append(float("nan"))
                continue
            scores.append(float(roc_auc_score(truth, predicted)))
        else:
            scores.append(float(np.sqrt(np.mean((truth - predicted) ** 2))) if len(truth) else float("nan"))
    return scores


def mean_score(scores: list[float]) -> float:
    defined = [score for score in scores if not np.isnan(score)]
    return float(np.mean(defined)) if defined else float("nan")


def metric_name(task_type: str) -> str:
    return "roc_auc" if task_type == "classification" else "rmse"
