"""Scoring new molecules with a student checkpoint alone: RDKit featurisation and an MLP, nothing else.

No GNN, no LLM, no network: the checkpoint carries the feature settings, the feature and
label scaling and the task, and is refused with a reason when it does not match this code.
Molecules are scored chunk by chunk (`pipeline.smiles_io` streams them in and out), so memory
stays bounded whatever the input size; a SMILES that cannot be used becomes a row with its
reason, never a crash.
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import rdkit
import torch
from rdkit import Chem, rdBase
from tqdm import tqdm

import pipeline
from pipeline.checkpoint import Checkpoint, load_checkpoint
from pipeline.chem import apply_fragment_policy, parse_smiles
from pipeline.errors import GallonError
from pipeline.featurize import ATOM_DIM
from pipeline.models import AtomMLPStudent, VectorMLP
from pipeline.molecule_features import (
    DESCRIPTOR_NAMES,
    FORMAT,
    AtomTable,
    FeatureError,
    FeatureScaler,
    MoleculeFeaturizer,
)
from pipeline.smiles_io import Sink, Source

STUDENT_KINDS = ("distilled_mlp", "plain_mlp")
_TIMESTAMP = re.compile(r"\[\d\d:\d\d:\d\d\] ")


class PredictError(GallonError):
    """Input or checkpoint that `gallon predict` cannot use."""


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """Refuse, with the reason and the fix, a checkpoint whose features this code would not rebuild identically."""
    retrain = "retrain it with `dvc repro distill`"
    if checkpoint.kind not in STUDENT_KINDS:
        raise PredictError(
            f"{path} is a {checkpoint.kind!r} checkpoint; gallon predict runs only the student "
            f"({' or '.join(STUDENT_KINDS)}), e.g. artifacts/distill/seed_0/distilled_mlp.pt"
        )
    features, versions = checkpoint.features, checkpoint.versions
    written_by = versions.get("gallon", "unknown")
    if _release(written_by) != _release(pipeline.__version__):
        raise PredictError(
            f"{path} was written by gallon {written_by}, this is gallon {pipeline.__version__}; {retrain}"
        )
    if features.get("format") != FORMAT:
        raise PredictError(
            f"{path} uses feature format {features.get('format')!r}, this code reads format {FORMAT}; {retrain}"
        )
    expected = ATOM_DIM if features.get("inputs") == "atoms" else featurizer_for(features).dim
    if features.get("descriptor_names") and features["descriptor_names"] != list(DESCRIPTOR_NAMES):
        raise PredictError(
            f"{path} was trained on RDKit {versions.get('rdkit')} descriptors, which differ from those "
            f"of the installed RDKit {rdkit.__version__}; {retrain}"
        )
    if not features.get("dim") == checkpoint.architecture.get("in_dim") == expected:
        raise PredictError(
            f"{path} expects {checkpoint.architecture.get('in_dim')} input features "
            f"(recorded: {features.get('dim')}), but {features.get('inputs')!r} gives {expected} here; "
            f"{retrain}"
        )


def featurizer_for(features: dict) -> MoleculeFeaturizer:
    try:
        return MoleculeFeaturizer(
            str(features.get("inputs")), int(features["fingerprint_radius"]), int(features["fingerprint_bits"])
        )
    except (KeyError, TypeError, ValueError, FeatureError) as error:
        raise PredictError(f"checkpoint feature settings are incomplete or unknown ({error})") from None


@dataclass
class Parsed:
    mols: list[Chem.Mol]
    errors: list[str]
    """'' for a usable molecule, else 'reason: RDKit's words'."""


class StudentPredictor:
    """A checked student checkpoint, ready to turn SMILES into predictions in the labels' units."""

    def __init__(self, path: Path) -> None:
        checkpoint = load_checkpoint(path)
        check_checkpoint(checkpoint, path)
        features = checkpoint.features
        self.task = checkpoint.task
        self.label_scaler = checkpoint.label_scaler
        self.fragments = features.get("fragments", "keep_all")
        self.per_atom = features["inputs"] == "atoms"
        self.atoms = AtomTable()
        if self.per_atom:
            self.model = AtomMLPStudent(**checkpoint.architecture)
        else:
            self.featurizer = featurizer_for(features)
            self.feature_scaler = FeatureScaler.from_dict(features["scaler"])
            self.model = VectorMLP(**checkpoint.architecture)
        self.model.load_state_dict(checkpoint.state_dict)
        self.model.eval()
        self.rdkit_warning = (
            None
            if checkpoint.versions.get("rdkit") == rdkit.__version__
            else f"checkpoint trained with RDKit {checkpoint.versions.get('rdkit')}, "
            f"running RDKit {rdkit.__version__}: features may differ slightly"
        )

    def parse(self, smiles: list[object]) -> Parsed:
        """Molecules prepared as the training set was (fragment policy); features do not depend on atom order."""
        mols, errors = [], []
        with rdBase.BlockLogs():
            fast = [Chem.MolFromSmiles(raw.strip()) if isinstance(raw, str) and raw.strip() else None for raw in smiles]
            for raw, mol in zip(smiles, fast, strict=True):
                if mol is None or mol.GetNumHeavyAtoms() == 0:
                    errors.append(None)
                    continue
                if self.fragments != "keep_all" and "." in raw:
                    mol = apply_fragment_policy(mol, self.fragments)
                mols.append(mol)
                errors.append("")
        errors = [self._reason(raw) if error is None else error for raw, error in zip(smiles, errors, strict=True)]
        return Parsed(mols, errors)

    def _reason(self, raw: object) -> str:
        """Why a SMILES is unusable, in the words of prepare's own parser (the slow path, for failures only)."""
        parsed = parse_smiles(raw, self.fragments)
        if parsed.mol is not None:  # usable by prepare's two-step parse but not by MolFromSmiles
            return "parse: RDKit's default parser rejects this SMILES"
        return f"{parsed.reason}: {_TIMESTAMP.sub('', parsed.message)}"

    @torch.no_grad()
    def featurise(self, mols: list[Chem.Mol]) -> torch.Tensor:
        """What the model reads: scaled molecule vectors, or for the per-atom student each molecule's atom-type mix."""
        if not self.per_atom:
            return torch.from_numpy(self.feature_scaler.transform(self.featurizer(mols)))
        counts = self.atoms.type_counts(mols)
        return torch.from_numpy(counts / np.maximum(counts.sum(1, keepdims=True), 1)).float()

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Model-space outputs for `featurise`d molecules.

        Without edges, the per-atom student's encoding of an atom depends only on its type, so
        the mean over a molecule's atoms is the type-mix-weighted mean of the encoded type table:
        the same numbers as `AtomMLPStudent.forward`, with the encoder run once per atom type.
        """
        if not self.per_atom:
            return self.model(features)[0]
        types = torch.from_numpy(self.atoms.table[: features.shape[1]])
        return self.model.head(features @ self.model.encoder(types))

    def predict_mols(self, mols: list[Chem.Mol]) -> np.ndarray:
        """(len(mols), n_tasks): probabilities for classification, label units for regression."""
        if not mols:
            return np.zeros((0, len(self.task.tasks)))
        output = self.forward(self.featurise(mols))
        return self.label_scaler.to_label_space(output.double().numpy(), self.task.task_type)

    def predict_chunk(self, smiles: list[object], first_row: int) -> pd.DataFrame:
        """One output row per input SMILES, in input order; `row` is the 1-based input row."""
        parsed = self.parse(smiles)
        ok = np.array([not error for error in parsed.errors], dtype=bool)
        values = np.full((len(smiles), len(self.task.tasks)), np.nan)
        values[ok] = self.predict_mols(parsed.mols)
        frame = pd.DataFrame(
            {
                "row": np.arange(first_row, first_row + len(smiles), dtype=np.int64),
                "smiles": [raw if isinstance(raw, str) else "" for raw in smiles],
            }
        )
        for column, task in enumerate(self.task.tasks):
            frame[task] = values[:, column]
        frame["error"] = parsed.errors
        return frame

    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("row", pa.int64()),
                ("smiles", pa.string()),
                *[(task, pa.float64()) for task in self.task.tasks],
                ("error", pa.string()),
            ]
        )


@dataclass
class PredictSummary:
    molecules: int
    invalid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.molecules / self.seconds if self.seconds > 0 else float("nan")


_WORKER: list[StudentPredictor] = []
"""The predictor a pool worker inherited at fork."""


def _start_worker(predictor: StudentPredictor) -> None:
    torch.set_num_threads(1)
    _WORKER.append(predictor)


def _score(chunk: list[object], first_row: int) -> pd.DataFrame:
    return _WORKER[0].predict_chunk(chunk, first_row)


def _numbered(chunks: Iterator[list[object]]) -> Iterator[tuple[list[object], int]]:
    first_row = 1
    for chunk in chunks:
        yield chunk, first_row
        first_row += len(chunk)


def scored_chunks(predictor: StudentPredictor, chunks: Iterator[list[object]], workers: int) -> Iterator[pd.DataFrame]:
    """Scored chunks in input order; with workers > 1, parsing and featurising (CPU-bound) run in forked processes.

    At most 2 x workers chunks are in flight, so memory stays bounded however long the input.
    """
    if workers <= 1:
        yield from (predictor.predict_chunk(*job) for job in _numbered(chunks))
        return
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (predictor,)) as pool:
        pending: deque = deque()
        for job in _numbered(chunks):
            pending.append(pool.apply_async(_score, job))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def predict_smiles(
    predictor: StudentPredictor, source: Source, sink: Sink, progress: bool = True, workers: int = 1
) -> PredictSummary:
    """Score every chunk of `source` into `sink`, with a done/total, rate and ETA bar on stderr."""
    started, done, invalid = time.perf_counter(), 0, 0
    with tqdm(
        total=source.total, unit="mol", disable=not progress, file=sys.stderr, mininterval=1.0, desc="predict"
    ) as bar:
        for frame in scored_chunks(predictor, source.chunks, workers):
            sink.write(frame)
            done += len(frame)
            invalid += int((frame["error"] != "").sum())
            bar.update(len(frame))
    sink.close()
    return PredictSummary(done, invalid, time.perf_counter() - started)
