"""Scores, the results table and the plot data, from every model's saved predictions.

All four models are scored by one function on the same molecules, so the table compares
like with like: plain MLP, LLM-prior head, GNN teacher, distilled MLP.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from pipeline.metrics import mean_score, metric_name, per_task

MODELS = {
    "plain_mlp": "plain MLP",
    "llm_prior": "LLM-prior head",
    "gnn_teacher": "GNN teacher",
    "distilled_mlp": "distilled MLP",
}


def score_predictions(
    predictions: dict[tuple[str, int], np.ndarray],
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    task_type: str,
    tasks: list[str],
) -> pd.DataFrame:
    """Long table: model, seed, split, task ('mean' for the task average), score."""
    rows = []
    for (model, seed), predicted in predictions.items():
        for split in ("valid", "test"):
            index = parts[split]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = per_task(labels[index], predicted[index], task_type, tasks)
            rows += [
                {"model": model, "seed": seed, "split": split, "task": task, "score": score}
                for task, score in zip(tasks, scores, strict=True)
            ]
            rows.append({"model": model, "seed": seed, "split": split, "task": "mean", "score": mean_score(scores)})
    return pd.DataFrame(rows)


def undefined_tasks(labels: np.ndarray, parts: dict[str, np.ndarray], task_type: str, tasks: list[str]) -> list[str]:
    """Tasks whose metric cannot be computed in some split (one class only); said once, loudly."""
    if task_type != "classification":
        return []
    notes = []
    for split in ("valid", "test"):
        for task, column in zip(tasks, labels[parts[split]].T, strict=True):
            if len(np.unique(column[~np.isnan(column)])) < 2:
                notes.append(f"{task} ({split})")
    return notes


def summarise(scores: pd.DataFrame, task_type: str) -> dict:
    """DVC metrics: per model, mean and std over seeds of the task-mean score, test and valid."""
    metric = metric_name(task_type)
    means = scores[scores["task"] == "mean"]
    summary: dict = {}
    for model in MODELS:
        rows = means[means["model"] == model]
        if rows.empty:
            continue
        entry = {}
        for split in ("test", "valid"):
            values = rows[rows["split"] == split]["score"].to_numpy()
            entry[f"{split}_{metric}"] = round(float(np.nanmean(values)), 4)
            entry[f"{split}_{metric}_std"] = round(float(np.nanstd(values)), 4)
        entry["seeds"] = int(rows["seed"].nunique())
        summary[model] = entry
    return summary


def results_table(scores: pd.DataFrame, task_type: str, dataset: str, tasks: list[str]) -> str:
    """Markdown: mean +- std over seeds, per model; per task too when there are several."""
    metric = metric_name(task_type)
    better = "higher is better" if task_type == "classification" else "lower is better"
    seeds = sorted(scores["seed"].unique())
    lines = [
        f"# {dataset}: test and valid {metric} ({better})",
        "",
        f"Mean +- std over seeds {', '.join(str(seed) for seed in seeds)}.",
        "",
    ]
    columns = ["test", "valid"] + ([f"test {task}" for task in tasks] if len(tasks) > 1 else [])
    lines += ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model, label in MODELS.items():
        rows = scores[scores["model"] == model]
        if rows.empty:
            continue
        cells = []
        for split, task in [("test", "mean"), ("valid", "mean")] + [("test", task) for task in tasks if len(tasks) > 1]:
            values = rows[(rows["split"] == split) & (rows["task"] == task)]["score"].to_numpy()
            cells.append(
                "undefined" if np.isnan(values).all() else f"{np.nanmean(values):.4f} +- {np.nanstd(values):.4f}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_points(
    predicted: np.ndarray, labels: np.ndarray, index: np.ndarray, task_type: str, model: str
) -> pd.DataFrame:
    """ROC points (classification, all tasks pooled) or true-vs-predicted pairs (regression) on one split."""
    truth, guess = labels[index].ravel(), predicted[index].ravel()
    observed = ~np.isnan(truth)
    truth, guess = truth[observed], guess[observed]
    if task_type == "classification":
        if len(np.unique(truth)) < 2:
            return pd.DataFrame(columns=["model", "fpr", "tpr"])
        fpr, tpr, _ = roc_curve(truth, guess)
        return pd.DataFrame({"model": model, "fpr": fpr.round(5), "tpr": tpr.round(5)})
    return pd.DataFrame({"model": model, "measured": truth.round(5), "predicted": guess.round(5)})
