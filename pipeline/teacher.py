"""The GNN teacher for one seed; its targets come from `train_model`'s eval-mode pass."""

from __future__ import annotations

import numpy as np

from pipeline.featurize import ATOM_DIM, BOND_DIM
from pipeline.models import GNNTeacher
from pipeline.params import TeacherParams, TrainParams
from pipeline.train import GraphInputs, LabelScaler, ModelRun, train_model


def teacher_architecture(params: TeacherParams, n_tasks: int) -> dict:
    return {
        "kind": params.model,
        "in_dim": ATOM_DIM,
        "edge_dim": BOND_DIM,
        "hidden": params.hidden,
        "layers": params.layers,
        "dropout": params.dropout,
        "out_dim": n_tasks,
    }


def train_teacher(
    inputs: GraphInputs,
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    task_type: str,
    scaler: LabelScaler,
    params: TeacherParams,
    train: TrainParams,
    seed: int,
) -> ModelRun:
    return train_model(
        GNNTeacher,
        teacher_architecture(params, labels.shape[1]),
        inputs,
        labels,
        parts,
        task_type=task_type,
        scaler=scaler,
        lr=params.lr,
        weight_decay=params.weight_decay,
        train=train,
        seed=seed,
    )
