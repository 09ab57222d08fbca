"""RDKit 2D depictions of molecules as PNG files, drawn in parallel.

The picture is one of the three views of a molecule the paper sends to the LLM. Files are
named by a hash of the molecule key, so duplicate SMILES can never collide and the name does
not depend on row order; the bytes are deterministic, so the image hash can be part of the
describe cache key.
"""

from __future__ import annotations

import hashlib
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import pandas as pd
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D
from tqdm import tqdm

INDEX_COLUMNS = ["molecule_key", "image", "status", "error"]


def image_name(molecule_key: str) -> str:
    """File name of a molecule's picture: stable across runs, machines and row orders."""
    return hashlib.sha256(molecule_key.encode("utf-8")).hexdigest()[:16] + ".png"


def image_sha256(path: str | Path) -> str:
    """Hash of a picture's bytes, the part of a describe cache key that stands for the image."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def draw_png(smiles: str, size: int) -> bytes:
    """PNG bytes of a size x size depiction; raises ValueError when RDKit cannot read or draw it."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit could not parse SMILES {smiles!r}")
    if mol.GetNumAtoms() == 0:
        raise ValueError("molecule has no atoms")
    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def _render_one(job: tuple[str, str, str, int]) -> dict:
    key, smiles, out_dir, size = job
    name = image_name(key)
    try:
        png = draw_png(smiles, size)
    except Exception as error:  # noqa: BLE001 - any drawing failure is recorded per molecule, never fatal
        return {"molecule_key": key, "image": None, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    path = Path(out_dir) / name
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(png)
    tmp.replace(path)
    return {"molecule_key": key, "image": name, "status": "ok", "error": None}


def render_molecules(keys: list[str], smiles: list[str], out_dir: Path, size: int, workers: int) -> pd.DataFrame:
    """Draw every molecule into out_dir; one index row per key, in input order.

    workers == 0 uses all cores. Failures are rows with status 'failed' and the reason.
    """
    if len(keys) != len(smiles):
        raise ValueError(f"{len(keys)} keys but {len(smiles)} SMILES")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(key, smi, str(out_dir), size) for key, smi in zip(keys, smiles, strict=True)]
    n_workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    progress = dict(total=len(jobs), desc="render", unit="mol", file=sys.stderr, mininterval=1.0)
    if n_workers == 1:
        rows = [_render_one(job) for job in tqdm(jobs, **progress)]
    else:
        chunksize = max(1, min(64, len(jobs) // (n_workers * 8)))
        with Pool(n_workers) as pool:
            rows = list(tqdm(pool.imap(_render_one, jobs, chunksize=chunksize), **progress))
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)
