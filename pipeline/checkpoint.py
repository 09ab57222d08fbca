"""Self-describing model files: weights plus everything needed to use them on new molecules.

A checkpoint carries the model's architecture, the label scaling, the task names and type,
the feature settings and the library versions, so `gallon predict` needs nothing else.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rdkit
import torch
from torch import nn

import pipeline
from pipeline.artifacts import ArtifactError, TaskInfo, write_atomically
from pipeline.train import LabelScaler


@dataclass
class Checkpoint:
    kind: str
    architecture: dict
    task: TaskInfo
    label_scaler: LabelScaler
    state_dict: dict
    features: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


def save_checkpoint(
    path: Path,
    model: nn.Module,
    kind: str,
    architecture: dict,
    task: TaskInfo,
    label_scaler: LabelScaler,
    features: dict | None = None,
) -> None:
    payload = {
        "kind": kind,
        "architecture": architecture,
        "task": asdict(task),
        "label_scaler": {"mean": label_scaler.mean.tolist(), "std": label_scaler.std.tolist()},
        "state_dict": model.state_dict(),
        "features": features or {},
        "versions": {"gallon": pipeline.__version__, "torch": str(torch.__version__), "rdkit": rdkit.__version__},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())


def load_checkpoint(path: Path) -> Checkpoint:
    if not Path(path).is_file():
        raise ArtifactError(f"checkpoint {path} is missing; train it with `dvc repro`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return Checkpoint(
            kind=payload["kind"],
            architecture=payload["architecture"],
            task=TaskInfo(**payload["task"]),
            label_scaler=LabelScaler(
                np.asarray(payload["label_scaler"]["mean"]), np.asarray(payload["label_scaler"]["std"])
            ),
            state_dict=payload["state_dict"],
            features=payload.get("features", {}),
            versions=payload.get("versions", {}),
        )
    except (KeyError, RuntimeError, OSError, EOFError) as error:
        raise ArtifactError(f"{path} is not a readable gallon checkpoint ({error}); retrain with `dvc repro`") from None
