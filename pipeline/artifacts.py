"""Where each stage's outputs live, and reading them back with errors that say how to rebuild."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import GallonError
from pipeline.metrics import metric_name

ROOT = Path("artifacts")


class ArtifactError(GallonError):
    """An input from an earlier stage is missing or unreadable."""


@dataclass(frozen=True)
class TaskInfo:
    """What is being predicted: written by prepare, read by every later stage and by the checkpoint."""

    dataset: str
    tasks: list[str]
    task_type: str

    @property
    def metric(self) -> str:
        return metric_name(self.task_type)


def stage_dir(stage: str, root: Path = ROOT) -> Path:
    path = root / stage
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing(path: Path, stage: str, problem: str) -> ArtifactError:
    return ArtifactError(f"{path} {problem}; rebuild it with `dvc repro {stage}` (or `gallon {stage}`)")


def read_parquet(path: Path, stage: str) -> pd.DataFrame:
    if not path.is_file():
        raise _missing(path, stage, "is missing")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise _missing(path, stage, f"is corrupt ({error})") from None


def read_json(path: Path, stage: str) -> dict:
    if not path.is_file():
        raise _missing(path, stage, "is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _missing(path, stage, f"is corrupt ({error})") from None


def read_arrays(path: Path, stage: str, names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array in an .npz; `names` must be among them (an older or foreign file is reported, not a KeyError)."""
    if not path.is_file():
        raise _missing(path, stage, "is missing")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            loaded = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _missing(path, stage, f"is corrupt ({type(error).__name__}: {error})") from None
    absent = [name for name in names if name not in loaded]
    if absent:
        raise _missing(path, stage, f"lacks array(s) {absent} (has {sorted(loaded)})")
    return loaded


def write_atomically(path: Path, data: bytes) -> None:
    """Readers never see half a file, even if the stage is killed mid-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=f".{path.name}.") as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def write_json(path: Path, value: dict) -> None:
    write_atomically(path, (json.dumps(value, indent=2, sort_keys=True, default=float) + "\n").encode())


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    write_atomically(path, sink.getvalue().to_pybytes())


def read_task(root: Path = ROOT) -> TaskInfo:
    path = root / "prepare" / "summary.json"
    summary = read_json(path, "prepare")
    try:
        return TaskInfo(**summary["task"])
    except (KeyError, TypeError) as error:
        raise _missing(path, "prepare", f"has no valid 'task' entry ({error})") from None


SPINE_COLUMNS = ("key", "smiles", "row", "split")


def read_molecules(root: Path = ROOT) -> pd.DataFrame:
    path = root / "prepare" / "molecules.parquet"
    molecules = read_parquet(path, "prepare")
    absent = [column for column in SPINE_COLUMNS if column not in molecules.columns]
    if absent:
        raise _missing(path, "prepare", f"lacks column(s) {absent}")
    return molecules
