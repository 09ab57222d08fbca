"""teacher: train the GNN teacher per seed; write checkpoints, eval-mode outputs and training curves."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.artifacts import read_molecules, read_task, stage_dir, write_json
from pipeline.checkpoint import save_checkpoint
from pipeline.featurize import graphs_from_smiles
from pipeline.params import load_params
from pipeline.spine import label_matrix, split_indices, training_data_summary
from pipeline.teacher import train_teacher
from pipeline.train import GraphInputs, LabelScaler, map_seeds


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    task, molecules = read_task(), read_molecules()
    labels, parts = label_matrix(molecules, task.tasks), split_indices(molecules)
    scaler = LabelScaler.fit(labels[parts["train"]], task.task_type)
    inputs = GraphInputs(graphs_from_smiles(molecules["smiles"].tolist()))
    out = stage_dir("teacher")
    curves = []
    train_one = partial(train_teacher, inputs, labels, parts, task.task_type, scaler, params.teacher, params.train)
    runs = map_seeds(train_one, params.train.seeds, params.train.workers)
    for seed, run in zip(params.train.seeds, runs, strict=True):
        seed_dir = out / f"seed_{seed}"
        save_checkpoint(
            seed_dir / "gnn_teacher.pt",
            run.fit.model,
            f"gnn_teacher_{params.teacher.model}",
            run.architecture,
            task,
            scaler,
        )
        np.savez(
            seed_dir / "gnn_teacher.npz",
            keys=molecules["key"].to_numpy(dtype=str),
            outputs=run.outputs,
            representations=run.representations,
            predictions=scaler.to_label_space(run.outputs, task.task_type),
        )
        curves += [{"model": "gnn_teacher", "seed": seed, **row} for row in run.fit.history]
        print(f"teacher seed {seed}: best epoch {run.fit.best_epoch} of {len(run.fit.history)}", file=sys.stderr)
    pd.DataFrame(curves).to_csv(out / "curves.csv", index=False)
    summary = training_data_summary(labels, parts, task.tasks)
    summary["seeds"] = {
        str(seed): {"best_epoch": run.fit.best_epoch, "epochs_run": len(run.fit.history)}
        for seed, run in zip(params.train.seeds, runs, strict=True)
    }
    write_json(out / "summary.json", summary)
