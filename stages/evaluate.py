"""evaluate: score the four models on valid and test per seed; DVC metrics, results.md, plot data."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pipeline.artifacts import ROOT, read_arrays, read_molecules, read_task, stage_dir, write_json
from pipeline.evaluate import MODELS, curve_points, results_table, score_predictions, summarise, undefined_tasks
from pipeline.params import load_params
from pipeline.spine import label_matrix, split_indices

_STAGE_OF = {"gnn_teacher": "teacher", "plain_mlp": "distill", "llm_prior": "distill", "distilled_mlp": "distill"}


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    task, molecules = read_task(), read_molecules()
    labels, parts = label_matrix(molecules, task.tasks), split_indices(molecules)
    predictions = {}
    for model in MODELS:
        for seed in params.train.seeds:
            stage = _STAGE_OF[model]
            path = ROOT / stage / f"seed_{seed}" / f"{model}.npz"
            predictions[model, seed] = read_arrays(path, stage, ("predictions",))["predictions"]
    for note in undefined_tasks(labels, parts, task.task_type, task.tasks):
        print(f"warning: {task.metric} undefined for {note}: one class only; left out of the mean", file=sys.stderr)
    scores = score_predictions(predictions, labels, parts, task.task_type, task.tasks)
    out = stage_dir("evaluate")
    scores.to_csv(out / "scores.csv", index=False)
    write_json(out / "metrics.json", summarise(scores, task.task_type))
    table = results_table(scores, task.task_type, task.dataset, task.tasks)
    (out / "results.md").write_text(table)
    first_seed = params.train.seeds[0]
    plot = pd.concat(
        [
            curve_points(predictions[model, first_seed], labels, parts["test"], task.task_type, model)
            for model in MODELS
        ],
        ignore_index=True,
    )
    plots = stage_dir("evaluate/plots")
    # dvc.yaml declares both plots; the one that does not apply to this task type stays empty.
    columns_of = {"roc.csv": ["model", "fpr", "tpr"], "parity.csv": ["model", "measured", "predicted"]}
    applies = "roc.csv" if task.task_type == "classification" else "parity.csv"
    for name, columns in columns_of.items():
        (plot if name == applies else pd.DataFrame(columns=columns)).to_csv(plots / name, index=False)
    print(table, file=sys.stderr)
