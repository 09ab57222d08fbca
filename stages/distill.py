"""distill: per seed, the LLM-prior head, the plain MLP and the distilled MLP; checkpoints, outputs, curves."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.artifacts import (
    ROOT,
    ArtifactError,
    read_arrays,
    read_json,
    read_molecules,
    read_task,
    stage_dir,
    write_json,
)
from pipeline.checkpoint import save_checkpoint
from pipeline.distillation import Guidance
from pipeline.params import load_params
from pipeline.spine import label_matrix, split_indices, training_data_summary
from pipeline.student import student_inputs, train_prior, train_student
from pipeline.train import LabelScaler, map_seeds


def _aligned(arrays: dict[str, np.ndarray], keys: np.ndarray, path: Path, stage: str) -> None:
    if arrays["keys"].shape != keys.shape or not (arrays["keys"] == keys).all():
        raise ArtifactError(
            f"{path} does not match artifacts/prepare/molecules.parquet; rebuild it with `dvc repro {stage}`"
        )


def _guidance(arrays: dict[str, np.ndarray], weight: float, available: np.ndarray | None = None) -> Guidance:
    return Guidance(
        torch.as_tensor(arrays["outputs"], dtype=torch.float32),
        torch.as_tensor(arrays["representations"], dtype=torch.float32),
        weight,
        None if available is None else torch.as_tensor(available, dtype=torch.bool),
    )


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    distill = params.distill
    task, molecules = read_task(), read_molecules()
    keys = molecules["key"].to_numpy(dtype=str)
    labels, parts = label_matrix(molecules, task.tasks), split_indices(molecules)
    scaler = LabelScaler.fit(labels[parts["train"]], task.task_type)
    embedding_path = ROOT / "embed" / "embeddings.npz"
    embeddings = read_arrays(embedding_path, "embed")
    _aligned(embeddings, keys, embedding_path, "embed")
    described_parts = {part: index[embeddings["described"][index]] for part, index in parts.items()}
    student = student_inputs(molecules["smiles"].tolist(), parts["train"], distill.student)
    fragments = read_json(ROOT / "prepare" / "summary.json", "prepare")["fragments"]
    student_features = {**student.features, "fragments": fragments}
    out = stage_dir("distill")
    curves = []

    def train_seed(seed: int) -> dict:
        teacher_path = ROOT / "teacher" / f"seed_{seed}" / "gnn_teacher.npz"
        teacher = read_arrays(teacher_path, "teacher")
        _aligned(teacher, keys, teacher_path, "teacher")
        prior = train_prior(
            embeddings["vectors"], labels, described_parts, task.task_type, scaler, distill, params.train, seed
        )
        prior_outputs = {"outputs": prior.outputs, "representations": prior.representations}
        teacher_and_prior = [
            _guidance(teacher, distill.alpha),
            _guidance(prior_outputs, distill.beta, embeddings["described"]),
        ]
        student_run = partial(
            train_student, student.inputs, labels, parts, task.task_type, scaler, distill, params.train, seed
        )
        return {
            "llm_prior": prior,
            "plain_mlp": student_run(sources=[]),
            "distilled_mlp": student_run(sources=teacher_and_prior),
        }

    all_runs = map_seeds(train_seed, params.train.seeds, params.train.workers)
    for seed, runs in zip(params.train.seeds, all_runs, strict=True):
        seed_dir = out / f"seed_{seed}"
        features = {"inputs": "embedding"}
        for name, run in runs.items():
            save_checkpoint(
                seed_dir / f"{name}.pt",
                run.fit.model,
                name,
                run.architecture,
                task,
                scaler,
                features if name == "llm_prior" else student_features,
            )
            np.savez(
                seed_dir / f"{name}.npz",
                keys=keys,
                outputs=run.outputs,
                representations=run.representations,
                predictions=scaler.to_label_space(run.outputs, task.task_type),
            )
            curves += [{"model": name, "seed": seed, **row} for row in run.fit.history]
            print(
                f"distill seed {seed} {name}: best epoch {run.fit.best_epoch} of {len(run.fit.history)}",
                file=sys.stderr,
            )
    pd.DataFrame(curves).to_csv(out / "curves.csv", index=False)
    summary = training_data_summary(labels, parts, task.tasks)
    summary["molecules_without_description"] = int((~embeddings["described"]).sum())
    summary["seeds"] = {
        str(seed): {
            name: {"best_epoch": run.fit.best_epoch, "epochs_run": len(run.fit.history)} for name, run in runs.items()
        }
        for seed, runs in zip(params.train.seeds, all_runs, strict=True)
    }
    write_json(out / "summary.json", summary)
