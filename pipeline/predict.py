"""Scoring new molecules with a student checkpoint alone: RDKit featurisation and an MLP, nothing else.

No GNN, no LLM, no network: the checkpoint carries the feature settings, the feature and
label scaling and the task, and is refused with a reason when it does not match this code.
Input is read and output written in chunks, so memory stays bounded whatever the input size;
a SMILES that cannot be used becomes a row with its reason, never a crash.
"""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import rdkit
import torch
from rdkit import Chem, rdBase
from tqdm import tqdm

import pipeline
from pipeline.checkpoint import Checkpoint, load_checkpoint
from pipeline.chem import apply_fragment_policy, parse_smiles
from pipeline.errors import GallonError
from pipeline.featurize import ATOM_DIM, GraphBatch
from pipeline.models import AtomMLPStudent, VectorMLP
from pipeline.molecule_features import (
    DESCRIPTOR_NAMES,
    FORMAT,
    AtomTable,
    FeatureError,
    FeatureScaler,
    MoleculeFeaturizer,
)

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
        raise PredictError(f"{path} is a {checkpoint.kind!r} checkpoint; gallon predict runs only the student "
                           f"({' or '.join(STUDENT_KINDS)}), e.g. artifacts/distill/seed_0/distilled_mlp.pt")
    features, versions = checkpoint.features, checkpoint.versions
    written_by = versions.get("gallon", "unknown")
    if _release(written_by) != _release(pipeline.__version__):
        raise PredictError(f"{path} was written by gallon {written_by}, this is gallon {pipeline.__version__}; "
                           f"{retrain}")
    if features.get("format") != FORMAT:
        raise PredictError(f"{path} uses feature format {features.get('format')!r}, this code reads format {FORMAT}; "
                           f"{retrain}")
    expected = ATOM_DIM if features.get("inputs") == "atoms" else featurizer_for(features).dim
    if features.get("descriptor_names") and features["descriptor_names"] != list(DESCRIPTOR_NAMES):
        raise PredictError(f"{path} was trained on RDKit {versions.get('rdkit')} descriptors, which differ from those "
                           f"of the installed RDKit {rdkit.__version__}; {retrain}")
    if not features.get("dim") == checkpoint.architecture.get("in_dim") == expected:
        raise PredictError(f"{path} expects {checkpoint.architecture.get('in_dim')} input features "
                           f"(recorded: {features.get('dim')}), but {features.get('inputs')!r} gives {expected} here; "
                           f"{retrain}")


def featurizer_for(features: dict) -> MoleculeFeaturizer:
    try:
        return MoleculeFeaturizer(str(features.get("inputs")), int(features["fingerprint_radius"]),
                                  int(features["fingerprint_bits"]))
    except (KeyError, TypeError, ValueError, FeatureError) as error:
        raise PredictError(f"checkpoint feature settings are incomplete or unknown ({error})") from None


def edgeless_batch(x: np.ndarray, sizes: np.ndarray) -> GraphBatch:
    """Molecules as graphs without edges: all the per-atom student reads (atoms and the mean-pool operator)."""
    n_atoms, n_graphs = len(x), len(sizes)
    counts = torch.from_numpy(sizes)
    batch = torch.repeat_interleave(torch.arange(n_graphs), counts)
    inverse_sizes = 1.0 / counts.clamp(min=1).float()
    atoms = torch.arange(n_atoms)
    crow = torch.zeros(n_graphs + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(counts, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta", as in featurize.collate
        mean_pool = torch.sparse_csr_tensor(crow, atoms, inverse_sizes[batch], (n_graphs, n_atoms))
        identity = torch.sparse_csr_tensor(torch.arange(n_atoms + 1), atoms, torch.ones(n_atoms), (n_atoms, n_atoms))
    empty = torch.zeros((2, 0), dtype=torch.long)
    return GraphBatch(torch.from_numpy(x), empty, torch.zeros((0, 0)), batch, n_graphs, identity, mean_pool,
                      inverse_sizes)


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
        self.canonical_for_stereo = self.per_atom or self.featurizer.sensitive_to_atom_order
        self.rdkit_warning = (None if checkpoint.versions.get("rdkit") == rdkit.__version__ else
                              f"checkpoint trained with RDKit {checkpoint.versions.get('rdkit')}, "
                              f"running RDKit {rdkit.__version__}: features may differ slightly")

    def parse(self, smiles: list[object]) -> Parsed:
        """Molecules prepared as the training set was: fragment policy, and prepare's atom order where it matters."""
        mols, errors = [], []
        with rdBase.BlockLogs():
            fast = [Chem.MolFromSmiles(raw.strip()) if isinstance(raw, str) and raw.strip() else None
                    for raw in smiles]
        for raw, mol in zip(smiles, fast, strict=True):
            text = raw if isinstance(raw, str) else ""
            if mol is None or mol.GetNumHeavyAtoms() == 0 or (self.canonical_for_stereo and "@" in text):
                # Slow path, rare: the pipeline's own parser, for its reason or for prepare's canonical atom order.
                parsed = parse_smiles(raw, self.fragments)
                mol = None if parsed.mol is None else Chem.MolFromSmiles(parsed.key)
                if mol is None:
                    errors.append(f"{parsed.reason}: {_TIMESTAMP.sub('', parsed.message)}")
                    continue
            elif self.fragments != "keep_all" and "." in text:
                mol = apply_fragment_policy(mol, self.fragments)
            mols.append(mol)
            errors.append("")
        return Parsed(mols, errors)

    @torch.no_grad()
    def predict_mols(self, mols: list[Chem.Mol]) -> np.ndarray:
        """(len(mols), n_tasks): probabilities for classification, label units for regression."""
        if not mols:
            return np.zeros((0, len(self.task.tasks)))
        if self.per_atom:
            output, _ = self.model(edgeless_batch(*self.atoms.atom_matrix(mols)))
        else:
            vectors = self.feature_scaler.transform(self.featurizer(mols))
            output, _ = self.model(torch.from_numpy(vectors))
        return self.label_scaler.to_label_space(output.double().numpy(), self.task.task_type)

    def predict_chunk(self, smiles: list[object], first_row: int) -> pd.DataFrame:
        """One output row per input SMILES, in input order; `row` is the 1-based input row."""
        parsed = self.parse(smiles)
        ok = np.array([not error for error in parsed.errors], dtype=bool)
        values = np.full((len(smiles), len(self.task.tasks)), np.nan)
        values[ok] = self.predict_mols(parsed.mols)
        frame = pd.DataFrame({"row": np.arange(first_row, first_row + len(smiles), dtype=np.int64),
                              "smiles": [raw if isinstance(raw, str) else "" for raw in smiles]})
        for column, task in enumerate(self.task.tasks):
            frame[task] = values[:, column]
        frame["error"] = parsed.errors
        return frame

    def schema(self) -> pa.Schema:
        return pa.schema([("row", pa.int64()), ("smiles", pa.string()),
                          *[(task, pa.float64()) for task in self.task.tasks], ("error", pa.string())])


@dataclass
class Source:
    """SMILES to score, as chunks, with the total when it is known up front (for the progress bar)."""

    chunks: Iterator[list[object]]
    total: int | None


def _count_csv_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    with open(path, "rb") as handle:
        handle.seek(max(os.path.getsize(path) - 1, 0))
        unterminated = handle.read(1) not in (b"\n", b"")
    return max(lines + unterminated - 1, 0)


def _csv_chunks(path: Path, column: str, size: int) -> Iterator[list[object]]:
    options = pacsv.ReadOptions(block_size=1 << 22)
    convert = pacsv.ConvertOptions(include_columns=[column], column_types={column: pa.string()},
                                   strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(path, read_options=options, convert_options=convert)
        for batch in reader:
            values = batch.column(0).to_pylist()
            for start in range(0, len(values), size):
                yield values[start:start + size]
    except (pa.ArrowInvalid, KeyError) as error:
        raise PredictError(f"cannot read column {column!r} of {path} as CSV ({error}); "
                           "name the SMILES column with --smiles-column") from None


def _parquet_chunks(file: pq.ParquetFile, column: str, size: int) -> Iterator[list[object]]:
    for batch in file.iter_batches(batch_size=size, columns=[column]):
        yield batch.column(0).to_pylist()


def open_source(smiles: list[str] | None, path: Path | None, column: str, chunk_size: int) -> Source:
    """SMILES given directly, or a .csv / .parquet file's `column`, streamed in chunks."""
    if (path is None) == (not smiles):
        raise PredictError("give SMILES as arguments or --input FILE (CSV or parquet), not both and not neither")
    if path is None:
        return Source(iter([list(smiles[start:start + chunk_size]) for start in range(0, len(smiles), chunk_size)]),
                      len(smiles))
    if not path.is_file():
        raise PredictError(f"input file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise PredictError(f"{path} is not a readable parquet file ({error})") from None
        if column not in file.schema_arrow.names:
            raise PredictError(f"{path} has no column {column!r}; its columns are {file.schema_arrow.names[:20]}: "
                               "name the SMILES column with --smiles-column")
        return Source(_parquet_chunks(file, column, chunk_size), file.metadata.num_rows)
    if path.suffix.lower() in (".csv", ".smi", ".txt"):
        return Source(_csv_chunks(path, column, chunk_size), _count_csv_rows(path))
    raise PredictError(f"cannot tell the format of {path}: use a .csv or .parquet file")


class Sink:
    """Writes chunks to .csv, .parquet or CSV on stdout; a file appears under its name only once complete."""

    def __init__(self, path: Path | None, schema: pa.Schema, stdout: TextIO | None = None) -> None:
        self.path, self.schema, self.stdout = path, schema, stdout
        if path is not None and path.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise PredictError(f"cannot tell the output format of {path}: name it .csv or .parquet")
        self.partial = None if path is None else path.with_name(f".{path.name}.partial")
        self._parquet: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            frame.to_csv(self.stdout or sys.stdout, header=self._rows == 0, index=False)
        elif self.path.suffix.lower() == ".csv":
            frame.to_csv(self.partial, mode="w" if self._rows == 0 else "a", header=self._rows == 0, index=False)
        else:
            if self._parquet is None:
                self.partial.parent.mkdir(parents=True, exist_ok=True)
                self._parquet = pq.ParquetWriter(self.partial, self.schema)
            self._parquet.write_table(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        self._rows += len(frame)

    def close(self) -> None:
        """Finish the file (a header-only one when nothing was scored) and move it into place."""
        if self._rows == 0:
            if self.path is not None and self.path.suffix.lower() != ".csv":
                self._parquet = pq.ParquetWriter(self.partial, self.schema)
            else:
                self.write(pd.DataFrame(columns=self.schema.names))
        if self._parquet is not None:
            self._parquet.close()
        if self.partial is not None:
            os.replace(self.partial, self.path)


@dataclass
class PredictSummary:
    molecules: int
    invalid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.molecules / self.seconds if self.seconds > 0 else float("nan")


def predict_smiles(predictor: StudentPredictor, source: Source, sink: Sink, progress: bool = True) -> PredictSummary:
    """Score every chunk of `source` into `sink`, with a done/total, rate and ETA bar on stderr."""
    started, done, invalid = time.perf_counter(), 0, 0
    with tqdm(total=source.total, unit="mol", unit_scale=True, disable=not progress, file=sys.stderr,
              mininterval=1.0, desc="predict") as bar:
        for chunk in source.chunks:
            frame = predictor.predict_chunk(chunk, first_row=done + 1)
            sink.write(frame)
            done += len(frame)
            invalid += int((frame["error"] != "").sum())
            bar.update(len(frame))
    sink.close()
    return PredictSummary(done, invalid, time.perf_counter() - started)
