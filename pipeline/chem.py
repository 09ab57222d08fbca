"""SMILES in, molecule key out, or a precise reason why not.

The molecule key is RDKit's canonical isomeric SMILES (stereo and isotopes kept): two
spellings of one molecule share a key, so they share a picture, an LLM answer and a split.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rdkit import Chem, rdBase
from rdkit.Chem.SaltRemover import SaltRemover

FragmentPolicy = Literal["keep_all", "largest", "strip_salts"]
REJECT_REASONS = ("empty", "parse", "valence", "kekulize", "sanitize", "no_heavy_atoms")

rdBase.LogToPythonStderr()
_SALT_REMOVER = SaltRemover()


@dataclass(frozen=True)
class Parsed:
    """A usable molecule (`mol` set) or a rejection (`reason` in REJECT_REASONS, with RDKit's words)."""

    mol: Chem.Mol | None
    key: str | None
    reason: str | None = None
    message: str = ""


def _quiet(call):
    """Run an RDKit call, returning its result and whatever it logged (its error text)."""
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        result = call()
    return result, " ".join(line.strip() for line in buffer.getvalue().splitlines() if line.strip())


def _largest_fragment(mol: Chem.Mol) -> Chem.Mol:
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    return max(fragments, key=lambda frag: (frag.GetNumHeavyAtoms(), Chem.MolToSmiles(frag)))


def apply_fragment_policy(mol: Chem.Mol, policy: FragmentPolicy) -> Chem.Mol:
    """Salts and counter-ions: keep them, keep only the largest fragment, or strip common salts."""
    if policy == "keep_all" or len(Chem.GetMolFrags(mol)) < 2:
        return mol
    if policy == "largest":
        return _largest_fragment(mol)
    stripped = _SALT_REMOVER.StripMol(mol)
    return stripped if stripped.GetNumAtoms() else mol  # a molecule made only of salts is kept whole


def molecules_from_keys(keys: Iterable[str]) -> list[Chem.Mol]:
    """Molecules re-read from prepare's keys, which already parsed: RDKit's per-molecule notes are noise here."""
    with rdBase.BlockLogs():
        return [Chem.MolFromSmiles(key) for key in keys]


def parse_smiles(raw: object, fragments: FragmentPolicy = "keep_all") -> Parsed:
    """Parse one SMILES cell; never raises for bad chemistry, reports it instead."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or not str(raw).strip():
        return Parsed(None, None, "empty", "missing SMILES (empty cell)")
    smiles = str(raw).strip()
    mol, log = _quiet(lambda: Chem.MolFromSmiles(smiles, sanitize=False))
    if mol is None:
        return Parsed(None, None, "parse", log or "RDKit could not parse the SMILES")
    try:
        _quiet(lambda: Chem.SanitizeMol(mol))
    except Chem.AtomValenceException as error:
        return Parsed(None, None, "valence", str(error).strip())
    except Chem.KekulizeException as error:
        return Parsed(None, None, "kekulize", str(error).strip())
    except Chem.MolSanitizeException as error:
        return Parsed(None, None, "sanitize", str(error).strip())
    mol = apply_fragment_policy(mol, fragments)
    if mol.GetNumHeavyAtoms() == 0:
        return Parsed(None, None, "no_heavy_atoms", "the molecule has no heavy atoms")
    return Parsed(mol, Chem.MolToSmiles(mol, isomericSmiles=True))
