"""One training loop for every model: masked label loss, optional guidance terms, best-validation selection.

Best validation decides the checkpoint (METHOD.md step 9); patience stops a run that has
stopped improving. Regression targets are standardised on the train split, so losses and
distillation terms are on one scale whatever the units.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import random
import warnings
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from pipeline.featurize import GraphBatch, collate
from pipeline.metrics import mean_score, per_task
from pipeline.params import TrainParams

Guide = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(output, representation, molecule indices) -> extra loss; how distillation plugs into the loop."""


def seed_everything(seed: int, threads: int = 0) -> None:
    """Same seed, same numbers on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


_SEED_JOB: Callable[[int], object] | None = None


def _run_seed_job(seed: int) -> object:
    return _SEED_JOB(seed)


def map_seeds(function: Callable[[int], object], seeds: list[int], workers: int) -> list:
    """`function(seed)` for every seed, in forked processes side by side.

    Each seed is independent and single-threaded, so the numbers do not depend on how many run at
    once. Workers inherit `function` (and its data) through fork; only seeds and results are pickled.
    """
    global _SEED_JOB
    workers = min(len(seeds), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [function(seed) for seed in seeds]
    _SEED_JOB = function
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_seed_job, seeds))
    finally:
        _SEED_JOB = None


@dataclass(frozen=True)
class LabelScaler:
    """Maps labels to model space (standardised for regression, unchanged for classification)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, y_train: np.ndarray, task_type: str) -> LabelScaler:
        tasks = y_train.shape[1]
        if task_type == "classification":
            return cls(np.zeros(tasks), np.ones(tasks))
        mean = np.nanmean(y_train, axis=0)
        std = np.nanstd(y_train, axis=0)
        return cls(mean, np.where(std > 0, std, 1.0))

    def to_model(self, y: np.ndarray) -> np.ndarray:
        return (y - self.mean) / self.std

    def from_model(self, output: np.ndarray) -> np.ndarray:
        return output * self.std + self.mean

    def to_label_space(self, output: np.ndarray, task_type: str) -> np.ndarray:
        """Probabilities for classification, values in the labels' units for regression."""
        if task_type == "classification":
            return 1.0 / (1.0 + np.exp(-output))
        return self.from_model(output)


class GraphInputs:
    """Molecules as PyG graphs; recently built batches are reused (full-batch training builds one, once)."""

    def __init__(self, graphs: list[Data], reuse: int = 4) -> None:
        self.graphs = graphs
        self._recent: OrderedDict[bytes, GraphBatch] = OrderedDict()
        self._reuse = reuse

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Tensor) -> GraphBatch:
        key = indices.numpy().tobytes()
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        batch = collate([self.graphs[index] for index in indices.tolist()])
        self._recent[key] = batch
        if len(self._recent) > self._reuse:
            self._recent.popitem(last=False)
        return batch


class VectorInputs:
    """One fixed-length vector per molecule."""

    def __init__(self, vectors: Tensor) -> None:
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def batch(self, indices: Tensor) -> Tensor:
        return self.vectors[indices]


Inputs = GraphInputs | VectorInputs


def label_loss(output: Tensor, target: Tensor, task_type: str) -> Tensor:
    """BCE-with-logits or MSE over observed labels only (NaN = missing, never 0)."""
    observed = ~torch.isnan(target)
    if not observed.any():
        return output.sum() * 0.0
    safe_target = torch.where(observed, target, torch.zeros_like(target))
    if task_type == "classification":
        losses = nn.functional.binary_cross_entropy_with_logits(output, safe_target, reduction="none")
    else:
        losses = (output - safe_target) ** 2
    return losses[observed].mean()


@dataclass
class FitResult:
    model: nn.Module
    best_epoch: int
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def predict(
    model: nn.Module, inputs: Inputs, indices: Tensor | None = None, chunk: int = 4096
) -> tuple[Tensor, Tensor]:
    """Outputs and representations in eval mode (dropout off, batch norm frozen)."""
    model.eval()
    indices = torch.arange(len(inputs)) if indices is None else indices
    outputs, representations = [], []
    for start in range(0, len(indices), chunk):
        output, representation = model(inputs.batch(indices[start : start + chunk]))
        outputs.append(output)
        representations.append(representation)
    return torch.cat(outputs), torch.cat(representations)


def validation_score(
    model: nn.Module, inputs: Inputs, indices: Tensor, y_true: np.ndarray, task_type: str, scaler: LabelScaler
) -> float:
    """Higher is better: ROC-AUC, or minus RMSE in the labels' own units; minus the loss where undefined."""
    output, _ = predict(model, inputs, indices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = mean_score(per_task(y_true, scaler.from_model(output.numpy()), task_type))
    if np.isnan(score):
        target = torch.as_tensor(scaler.to_model(y_true), dtype=torch.float32)
        return -float(label_loss(output, target, task_type))
    return score if task_type == "classification" else -score


def fit(
    model: nn.Module,
    inputs: Inputs,
    labels: np.ndarray,
    train_index: np.ndarray,
    valid_index: np.ndarray,
    *,
    task_type: str,
    scaler: LabelScaler,
    lr: float,
    weight_decay: float,
    epochs: int,
    patience: int,
    batch_size: int,
    seed: int,
    guide: Guide | None = None,
) -> FitResult:
    """Train with Adam; keep the weights of the best validation epoch."""
    target = torch.as_tensor(scaler.to_model(labels), dtype=torch.float32)
    train_idx = torch.as_tensor(train_index, dtype=torch.long)
    valid_idx = torch.as_tensor(valid_index, dtype=torch.long)
    valid_truth = labels[valid_index]
    trainable = list(model.parameters()) + (list(guide.parameters()) if isinstance(guide, nn.Module) else [])
    optimiser = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    step = batch_size if batch_size and batch_size < len(train_idx) else len(train_idx)

    best_score, best_epoch, best_state = -np.inf, 0, copy.deepcopy(model.state_dict())
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = train_idx if step == len(train_idx) else train_idx[torch.randperm(len(train_idx), generator=generator)]
        total = 0.0
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            if len(chunk) < 2 and len(order) >= 2:
                continue  # batch norm cannot train on a single molecule
            output, representation = model(inputs.batch(chunk))
            loss = label_loss(output, target[chunk], task_type)
            if guide is not None:
                loss = loss + guide(output, representation, chunk)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(chunk)
        score = validation_score(model, inputs, valid_idx, valid_truth, task_type, scaler)
        history.append({"epoch": epoch, "train_loss": total / len(order), "valid_score": score})
        if score > best_score:
            best_score, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, best_epoch, history)


@dataclass
class ModelRun:
    """A trained model with its outputs and pooled representations for every molecule (eval mode)."""

    fit: FitResult
    architecture: dict
    outputs: np.ndarray
    representations: np.ndarray


def train_model(
    model_class: type[nn.Module],
    architecture: dict,
    inputs: Inputs,
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    *,
    task_type: str,
    scaler: LabelScaler,
    lr: float,
    weight_decay: float,
    train: TrainParams,
    seed: int,
    guide_factory: Callable[[int], nn.Module] | None = None,
) -> ModelRun:
    """Seed, build, fit on train with selection on valid, then predict every molecule."""
    seed_everything(seed, train.threads)
    model = model_class(**architecture)
    guide = guide_factory(architecture["hidden"]) if guide_factory else None
    result = fit(
        model,
        inputs,
        labels,
        parts["train"],
        parts["valid"],
        task_type=task_type,
        scaler=scaler,
        lr=lr,
        weight_decay=weight_decay,
        epochs=train.epochs,
        patience=train.patience,
        batch_size=train.batch_size,
        seed=seed,
        guide=guide,
    )
    outputs, representations = predict(result.model, inputs)
    return ModelRun(result, architecture, outputs.numpy(), representations.numpy())
