"""Graph-free molecule vectors for the edge-free student: Morgan counts, RDKit 2D descriptors, pooled atoms.

Featurisation is what `gallon predict` spends its time on, so every block is built for
speed: Morgan counts come straight from RDKit's generator as NumPy, and atom one-hots are
looked up from a per-process table keyed by the atom's properties (the reference
`featurize.atom_features` only runs for atom types not seen before).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from pipeline.errors import GallonError
from pipeline.featurize import ATOM_DIM, atom_features, atom_keys

BLOCKS = ("fingerprint", "descriptors", "pooled_atoms")
FORMAT = 1
"""Bumped whenever a block's definition changes, so old checkpoints are refused rather than misread."""
DESCRIPTOR_NAMES = tuple(name for name, _ in Descriptors._descList)
_DESCRIPTOR_FUNCTIONS = tuple(function for _, function in Descriptors._descList)
CLIP = 10.0
"""Scaled features are clipped to +-CLIP: a new molecule far outside the train range cannot blow up the MLP."""


class FeatureError(GallonError, ValueError):
    """Feature settings that cannot be built or do not match a checkpoint."""


class AtomTable:
    """Atom one-hot rows (identical to `featurize.atom_features`), each atom type computed once.

    An atom's one-hot row depends only on eight properties, so a molecule is fully described
    by how many atoms of each distinct type it has: pooling, and the per-atom student, then
    work on a small table of types instead of one row per atom.
    """

    def __init__(self) -> None:
        self._code_of: dict[tuple, int] = {}
        self._rows: list[np.ndarray] = []
        self._table = np.zeros((0, ATOM_DIM), dtype=np.float32)

    def codes(self, mol: Chem.Mol) -> list[int]:
        """One table row index per atom, in atom order."""
        keys = atom_keys(mol)
        codes = list(map(self._code_of.get, keys))
        if None not in codes:
            return codes
        for key, row in zip(keys, atom_features(mol), strict=True):
            if key not in self._code_of:
                self._code_of[key] = len(self._rows)
                self._rows.append(row)
        self._table = np.stack(self._rows)
        return [self._code_of[key] for key in keys]

    @property
    def table(self) -> np.ndarray:
        """(n_atom_types, ATOM_DIM) one-hot rows, indexed by code."""
        return self._table

    def type_counts(self, mols: list[Chem.Mol]) -> np.ndarray:
        """(len(mols), n_atom_types) float64: how many atoms of each type each molecule has."""
        codes = [self.codes(mol) for mol in mols]
        owner = np.repeat(np.arange(len(mols)), [len(row) for row in codes])
        flat = np.fromiter(itertools.chain.from_iterable(codes), dtype=np.int64, count=len(owner))
        n_types = len(self._rows)
        return (
            np.bincount(owner * n_types + flat, minlength=len(mols) * n_types)
            .reshape(len(mols), n_types)
            .astype(np.float64)
        )


def pooled_atoms(table: AtomTable, mols: list[Chem.Mol]) -> np.ndarray:
    """(n, 2 * ATOM_DIM): mean then sum of each molecule's atom one-hots."""
    counts = table.type_counts(mols)
    sums = counts @ table.table
    return np.hstack([sums / np.maximum(counts.sum(1), 1)[:, None], sums])


def descriptors(mol: Chem.Mol) -> np.ndarray:
    """Every RDKit 2D descriptor in `Descriptors._descList`; failures, NaN and inf become 0."""
    values = np.empty(len(_DESCRIPTOR_FUNCTIONS), dtype=np.float64)
    for index, function in enumerate(_DESCRIPTOR_FUNCTIONS):
        try:
            values[index] = function(mol)
        except Exception:  # one descriptor failing on an odd molecule must not lose the others
            values[index] = np.nan
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class MoleculeFeaturizer:
    """Molecule -> one fixed-length vector, from the blocks named in `inputs` ('+'-joined, in BLOCKS)."""

    inputs: str
    radius: int = 2
    bits: int = 2048
    _atoms: AtomTable = field(default_factory=AtomTable, repr=False)

    def __post_init__(self) -> None:
        unknown = [block for block in self.blocks if block not in BLOCKS]
        if unknown or not self.blocks:
            raise FeatureError(f"unknown feature block(s) {unknown} in {self.inputs!r}; allowed: {', '.join(BLOCKS)}")
        self._morgan = rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.bits)

    @property
    def blocks(self) -> tuple[str, ...]:
        return tuple(block.strip() for block in self.inputs.split("+") if block.strip())

    @property
    def dim(self) -> int:
        sizes = {"fingerprint": self.bits, "descriptors": len(DESCRIPTOR_NAMES), "pooled_atoms": 2 * ATOM_DIM}
        return sum(sizes[block] for block in self.blocks)

    def settings(self) -> dict:
        """What a checkpoint must record to featurise new molecules identically."""
        return {
            "format": FORMAT,
            "inputs": self.inputs,
            "fingerprint_radius": self.radius,
            "fingerprint_bits": self.bits,
            "dim": self.dim,
            "descriptor_names": list(DESCRIPTOR_NAMES) if "descriptors" in self.blocks else [],
        }

    def __call__(self, mols: list[Chem.Mol]) -> np.ndarray:
        """(len(mols), dim) float64, unscaled."""
        parts = []
        for block in self.blocks:
            if block == "fingerprint":
                counts = np.zeros((len(mols), self.bits), dtype=np.float64)
                for row, mol in enumerate(mols):
                    counts[row] = self._morgan.GetCountFingerprintAsNumPy(mol)
                parts.append(counts)
            elif block == "descriptors":
                values = np.array([descriptors(mol) for mol in mols])
                parts.append(values.reshape(len(mols), len(DESCRIPTOR_NAMES)))
            else:
                parts.append(pooled_atoms(self._atoms, mols))
        return np.hstack(parts)


@dataclass(frozen=True)
class FeatureScaler:
    """Standardisation fitted on the train split only; a column constant on train stays 0 everywhere."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> FeatureScaler:
        std = train.std(axis=0)
        return cls(train.mean(axis=0), np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """float32, clipped to +-CLIP."""
        return np.clip((features - self.mean) * self.scale, -CLIP, CLIP).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> FeatureScaler:
        return cls(np.asarray(values["mean"], dtype=np.float64), np.asarray(values["scale"], dtype=np.float64))
