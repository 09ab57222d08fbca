"""The students for one seed: the LLM-prior head, the plain MLP and the distilled MLP.

The plain MLP is the same architecture trained with alpha = beta = 0, so the table's
difference between the two is the effect of distillation alone. The student reads either
the paper's per-atom one-hots (`inputs: atoms`) or graph-free molecule vectors scaled on the
train split; either way it never sees a bond at prediction time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.chem import molecules_from_keys
from pipeline.distillation import DistillationGuide, Guidance
from pipeline.featurize import ATOM_DIM, graphs_from_smiles
from pipeline.models import AtomMLPStudent, VectorMLP
from pipeline.molecule_features import FORMAT, FeatureScaler, MoleculeFeaturizer
from pipeline.params import DistillParams, StudentParams, TrainParams
from pipeline.train import GraphInputs, Inputs, LabelScaler, ModelRun, VectorInputs, train_model


def prior_architecture(params: DistillParams, embedding_dim: int, n_tasks: int) -> dict:
    return {
        "in_dim": embedding_dim,
        "hidden": params.prior.hidden,
        "layers": 1,
        "dropout": params.prior.dropout,
        "out_dim": n_tasks,
    }


def train_prior(
    embeddings: np.ndarray,
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    task_type: str,
    scaler: LabelScaler,
    params: DistillParams,
    train: TrainParams,
    seed: int,
) -> ModelRun:
    """A small head from description embeddings to the labels, trained on the train split only."""
    inputs = VectorInputs(torch.as_tensor(embeddings, dtype=torch.float32))
    return train_model(
        VectorMLP,
        prior_architecture(params, embeddings.shape[1], labels.shape[1]),
        inputs,
        labels,
        parts,
        task_type=task_type,
        scaler=scaler,
        lr=params.prior.lr,
        weight_decay=params.prior.weight_decay,
        train=train,
        seed=seed,
    )


@dataclass
class StudentInputs:
    """The student's view of every molecule, and the settings a checkpoint needs to rebuild it for new ones."""

    inputs: Inputs
    features: dict


def student_inputs(smiles: list[str], train_index: np.ndarray, params: StudentParams) -> StudentInputs:
    """Per-atom graphs for `atoms`; otherwise molecule vectors standardised with statistics of `train_index` only."""
    if params.inputs == "atoms":
        return StudentInputs(
            GraphInputs(graphs_from_smiles(smiles)), {"format": FORMAT, "inputs": "atoms", "dim": ATOM_DIM}
        )
    featurizer = MoleculeFeaturizer(params.inputs, params.fingerprint_radius, params.fingerprint_bits)
    raw = featurizer(molecules_from_keys(smiles))
    scaler = FeatureScaler.fit(raw[train_index])
    return StudentInputs(
        VectorInputs(torch.from_numpy(scaler.transform(raw))), {**featurizer.settings(), "scaler": scaler.to_dict()}
    )


def student_architecture(params: DistillParams, n_tasks: int, in_dim: int = ATOM_DIM) -> dict:
    student = params.student
    return {
        "in_dim": in_dim,
        "hidden": student.hidden,
        "layers": student.layers,
        "dropout": student.dropout,
        "out_dim": n_tasks,
    }


def train_student(
    inputs: Inputs,
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    task_type: str,
    scaler: LabelScaler,
    params: DistillParams,
    train: TrainParams,
    seed: int,
    sources: list[Guidance],
) -> ModelRun:
    """The edge-free student (per-atom MLP on graphs, VectorMLP on vectors); no weighted source = plain MLP."""
    guide_factory = None
    if any(source.weight > 0 for source in sources):

        def guide_factory(width: int) -> DistillationGuide:
            return DistillationGuide(width, sources, task_type, params.terms, params.temperature)

    if isinstance(inputs, GraphInputs):
        model_class, in_dim = AtomMLPStudent, ATOM_DIM
    else:
        model_class, in_dim = VectorMLP, inputs.vectors.shape[1]
    return train_model(
        model_class,
        student_architecture(params, labels.shape[1], in_dim),
        inputs,
        labels,
        parts,
        task_type=task_type,
        scaler=scaler,
        lr=params.student.lr,
        weight_decay=params.student.weight_decay,
        train=train,
        seed=seed,
        guide_factory=guide_factory,
    )
