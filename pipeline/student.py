"""The students for one seed: the LLM-prior head, the plain MLP and the distilled MLP.

The plain MLP is the same architecture trained with alpha = beta = 0, so the table's
difference between the two is the effect of distillation alone.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.distillation import DistillationGuide, Guidance
from pipeline.featurize import ATOM_DIM
from pipeline.models import AtomMLPStudent, VectorMLP
from pipeline.params import DistillParams, TrainParams
from pipeline.train import GraphInputs, LabelScaler, ModelRun, VectorInputs, train_model


def prior_architecture(params: DistillParams, embedding_dim: int, n_tasks: int) -> dict:
    return {"in_dim": embedding_dim, "hidden": params.prior.hidden, "layers": 1, "dropout": params.prior.dropout,
            "out_dim": n_tasks}


def train_prior(embeddings: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray], task_type: str,
                scaler: LabelScaler, params: DistillParams, train: TrainParams, seed: int) -> ModelRun:
    """A small head from description embeddings to the labels, trained on the train split only."""
    inputs = VectorInputs(torch.as_tensor(embeddings, dtype=torch.float32))
    return train_model(VectorMLP, prior_architecture(params, embeddings.shape[1], labels.shape[1]), inputs, labels,
                       parts, task_type=task_type, scaler=scaler, lr=params.prior.lr,
                       weight_decay=params.prior.weight_decay, train=train, seed=seed)


def student_architecture(params: DistillParams, n_tasks: int) -> dict:
    student = params.student
    return {"in_dim": ATOM_DIM, "hidden": student.hidden, "layers": student.layers, "dropout": student.dropout,
            "out_dim": n_tasks}


def train_student(inputs: GraphInputs, labels: np.ndarray, parts: dict[str, np.ndarray], task_type: str,
                  scaler: LabelScaler, params: DistillParams, train: TrainParams, seed: int,
                  sources: list[Guidance]) -> ModelRun:
    """The edge-free student; with no weighted source it is the plain MLP baseline."""
    guide_factory = None
    if any(source.weight > 0 for source in sources):
        def guide_factory(width: int) -> DistillationGuide:
            return DistillationGuide(width, sources, task_type, params.terms, params.temperature)
    return train_model(AtomMLPStudent, student_architecture(params, labels.shape[1]), inputs, labels, parts,
                       task_type=task_type, scaler=scaler, lr=params.student.lr,
                       weight_decay=params.student.weight_decay, train=train, seed=seed,
                       guide_factory=guide_factory)
