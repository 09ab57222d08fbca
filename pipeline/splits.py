"""Train/valid/test assignment: scaffold (deterministic), random scaffold (seeded), random (seeded)."""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Literal

import numpy as np
from rdkit.Chem.Scaffolds import MurckoScaffold

from pipeline.chem import molecules_from_keys
from pipeline.errors import GallonError

SplitMethod = Literal["scaffold", "random_scaffold", "random"]
PARTS = ("train", "valid", "test")


class SplitError(GallonError, ValueError):
    """The data cannot be split as asked (too few molecules or scaffolds)."""


def scaffold_of(smiles: str) -> str:
    """Bemis-Murcko scaffold with chirality; '' for ring-free molecules (they share one set)."""
    (mol,) = molecules_from_keys([smiles])
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=True)


def _fill(groups: list[list[int]], n: int, train: float, valid: float) -> np.ndarray:
    """Place whole groups in order: into train until it would pass train*n, then valid, rest test."""
    parts = np.empty(n, dtype=object)
    train_cut, valid_cut = train * n, (train + valid) * n
    n_train = n_valid = 0
    for group in groups:
        if n_train + len(group) <= train_cut:
            parts[group], n_train = "train", n_train + len(group)
        elif n_train + n_valid + len(group) <= valid_cut:
            parts[group], n_valid = "valid", n_valid + len(group)
        else:
            parts[group] = "test"
    return parts


def split_molecules(smiles: list[str], method: SplitMethod, train: float, valid: float, seed: int) -> np.ndarray:
    """One part name per molecule. Molecules must already be unique by key."""
    n = len(smiles)
    ring_free = 0
    if n < 3:
        raise SplitError(f"{n} molecule(s) cannot fill train, valid and test; the dataset needs at least 3")
    if method == "random":
        order = np.random.default_rng(seed).permutation(n)
        groups = [[int(index)] for index in order]
    else:
        by_scaffold: dict[str, list[int]] = defaultdict(list)
        for index, smi in enumerate(smiles):
            by_scaffold[scaffold_of(smi)].append(index)
        ring_free = len(by_scaffold.get("", []))
        if ring_free > (1 - train - valid) * n:
            warnings.warn(
                f"{ring_free} of {n} molecules are ring-free: they share the empty scaffold and stay in one part",
                stacklevel=2,
            )
        groups = list(by_scaffold.values())
        if method == "scaffold":
            groups.sort(key=lambda group: (-len(group), -group[0]))  # ties: larger first index first
        else:  # shuffled, but sets too big for valid or test go first (chemprop's "balanced" scaffold split)
            rng = np.random.default_rng(seed)
            limit = min(valid, 1 - train - valid) * n / 2
            big = [group for group in groups if len(group) > limit]
            small = [group for group in groups if len(group) <= limit]
            groups = [big[i] for i in rng.permutation(len(big))] + [small[i] for i in rng.permutation(len(small))]
    parts = _fill(groups, n, train, valid)
    counts = {part: int((parts == part).sum()) for part in PARTS}
    empty = [part for part, count in counts.items() if count == 0]
    if empty:
        why = f" ({ring_free} are ring-free and share the empty scaffold, which cannot be divided)" if ring_free else ""
        raise SplitError(
            f"{method} split of {n} molecules{why} left {', '.join(empty)} empty (sizes {counts}); "
            "use more data, split.method: random, or other split fractions"
        )
    return parts
