"""Prediction speed of the student against the GNN teachers, and memory of `gallon predict` (a benchmark, not a test).

All in one run on the same molecules of a real MoleculeNet set, one torch thread each:
1. model-only: molecules/s of a forward pass on pre-featurised batches (students on atoms,
   Morgan counts, pooled atoms and pooled atoms + RDKit descriptors; GCN and GINE teachers);
2. end-to-end from SMILES: parse + featurise + forward, the way each model is used;
   RDKit `Chem.MolFromSmiles` alone on the same SMILES as the reference limit (and PyG's
   `from_smiles` for comparison);
3. `gallon predict` on a file of --big SMILES (the set repeated), run as a subprocess:
   wall time, rate and peak RSS (`getrusage(RUSAGE_CHILDREN)`).
Targets: student model-only >= 5x GCN and >= 30x GINE; end-to-end predict >= 0.5x parse-only.
Weights are freshly initialised at the pipeline's default sizes: speed does not depend on them.

Run from the repository root: `python -m benchmarks.predict_speed [--dataset lipo] [--big 1000000]`
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from rdkit import Chem, rdBase
from torch_geometric.utils import from_smiles

from pipeline.artifacts import TaskInfo
from pipeline.checkpoint import save_checkpoint
from pipeline.datasets import MOLECULENET, locate_moleculenet
from pipeline.featurize import collate, mol_to_graph
from pipeline.models import AtomMLPStudent, GNNTeacher, VectorMLP
from pipeline.params import DistillParams, StudentParams, TeacherParams
from pipeline.predict import StudentPredictor, scored_chunks
from pipeline.student import student_architecture, student_inputs
from pipeline.teacher import teacher_architecture
from pipeline.train import LabelScaler

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1024
STUDENT_INPUTS = ("atoms", "fingerprint", "pooled_atoms", "pooled_atoms+descriptors")


def best_rates(count: int, actions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Molecules/s of each action's fastest run; repeats are interleaved round-robin.

    The machine is shared: interleaving exposes every action to the same load, and the
    fastest run is the least disturbed one.
    """
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: count / min(values) for name, values in times.items()}


def valid_smiles(dataset: str, limit: int) -> list[str]:
    spec = MOLECULENET[dataset]
    frame = pd.read_csv(locate_moleculenet(spec, ROOT / "artifacts" / "downloads"), dtype={spec.smiles_column: str})
    with rdBase.BlockLogs():
        smiles = [smi for smi in frame[spec.smiles_column].dropna() if Chem.MolFromSmiles(smi) is not None]
    return smiles[:limit]


def student_checkpoint(path: Path, inputs: str, smiles: list[str]) -> StudentPredictor:
    """A student checkpoint written as the distill stage writes it (untrained weights), loaded for prediction."""
    distill = DistillParams(student=StudentParams(inputs=inputs))
    features = student_inputs(smiles, np.arange(len(smiles)), distill.student).features
    architecture = student_architecture(distill, 1, features["dim"])
    model = (AtomMLPStudent if inputs == "atoms" else VectorMLP)(**architecture)
    save_checkpoint(
        path,
        model,
        "distilled_mlp",
        architecture,
        TaskInfo("bench", ["y"], "regression"),
        LabelScaler(np.zeros(1), np.ones(1)),
        {**features, "fragments": "keep_all"},
    )
    return StudentPredictor(path)


@torch.no_grad()
def model_only(mols: list[Chem.Mol], students: dict[str, StudentPredictor], repeats: int) -> dict[str, float]:
    """Forward passes only, on batches featurised beforehand the way each model is fed at prediction time."""
    batches = [mols[start : start + BATCH] for start in range(0, len(mols), BATCH)]
    graph_batches = [collate([mol_to_graph(mol) for mol in batch]) for batch in batches]
    actions = {}
    for name, student in students.items():
        features = [student.featurise(batch) for batch in batches]
        actions[f"student_{name}"] = lambda s=student, f=features: [s.forward(x) for x in f]
    per_atom = students["atoms"].model  # the same student run atom by atom on graph batches, as in training
    actions["student_atoms_per_atom"] = lambda: [per_atom(batch) for batch in graph_batches]
    for name in ("gcn", "gine"):
        model = GNNTeacher(**teacher_architecture(TeacherParams(model=name), 1)).eval()
        actions[f"teacher_{name}"] = lambda m=model: [m(batch) for batch in graph_batches]
    return best_rates(len(mols), actions, repeats)


@torch.no_grad()
def end_to_end(smiles: list[str], students: dict[str, StudentPredictor], repeats: int) -> dict[str, float]:
    teachers = {
        name: GNNTeacher(**teacher_architecture(TeacherParams(model=name), 1)).eval() for name in ("gcn", "gine")
    }

    def teacher_from_smiles(model: GNNTeacher) -> None:
        for start in range(0, len(smiles), BATCH):
            model(collate([mol_to_graph(Chem.MolFromSmiles(smi)) for smi in smiles[start : start + BATCH]]))

    def student_from_smiles(predictor: StudentPredictor) -> None:
        for start in range(0, len(smiles), BATCH):
            predictor.predict_chunk(smiles[start : start + BATCH], start + 1)

    chunks = [smiles[start : start + BATCH] for start in range(0, len(smiles), BATCH)]
    actions = {
        "rdkit_parse_only": lambda: [Chem.MolFromSmiles(smi) for smi in smiles],
        **{f"student_{name}": lambda s=student: student_from_smiles(s) for name, student in students.items()},
        "student_atoms_2_workers": lambda: list(scored_chunks(students["atoms"], iter(chunks), workers=2)),
        **{f"teacher_{name}": lambda m=model: teacher_from_smiles(m) for name, model in teachers.items()},
    }
    rates = best_rates(len(smiles), actions, repeats)
    rates |= best_rates(len(smiles), {"pyg_from_smiles": lambda: [from_smiles(smi) for smi in smiles]}, 1)
    return rates


def predict_million(smiles: list[str], total: int, workdir: Path) -> dict[str, float]:
    """`gallon predict` on `total` SMILES (the set repeated) from parquet to parquet, in a child process."""
    column = np.resize(np.array(smiles, dtype=object), total)
    big = workdir / "big.parquet"
    pq.write_table(pa.table({"smiles": pa.array(column, pa.string())}), big)
    command = [
        "gallon",
        "predict",
        "-c",
        str(workdir / "atoms.pt"),
        "-i",
        str(big),
        "-o",
        str(workdir / "out.parquet"),
        "--no-progress",
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    rows = pq.ParquetFile(workdir / "out.parquet").metadata.num_rows
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"molecules": rows, "seconds": seconds, "rate": rows / seconds, "peak_rss_mib": peak_mib}


def report(dataset: str, n: int, model: dict, e2e: dict, big: dict | None) -> str:
    lines = [
        f"Molecules: the first {n} parsable SMILES of {dataset}; batches of {BATCH}; torch threads: 1.",
        "",
        "| model | model-only mol/s | end-to-end from SMILES mol/s |",
        "|---|---|---|",
    ]
    names = {
        "student_atoms": "student, per-atom MLP (paper)",
        "student_fingerprint": "student, Morgan counts MLP",
        "student_pooled_atoms": "student, pooled atoms MLP (pooled configuration)",
        "student_pooled_atoms+descriptors": "student, pooled atoms + RDKit descriptors MLP (hybrid configuration)",
        "teacher_gcn": "GCN teacher (paper)",
        "teacher_gine": "GINE teacher",
    }
    for key, label in names.items():
        lines.append(f"| {label} | {model[key]:,.0f} | {e2e[key]:,.0f} |")
    lines.append(
        f"| student, per-atom MLP run atom by atom (as in training) | {model['student_atoms_per_atom']:,.0f} | |"
    )
    lines += [
        f"| student, per-atom MLP, 2 worker processes (`--workers 2`) | | {e2e['student_atoms_2_workers']:,.0f} |",
        f"| RDKit `MolFromSmiles` alone | | {e2e['rdkit_parse_only']:,.0f} |",
        f"| PyG `from_smiles` alone | | {e2e['pyg_from_smiles']:,.0f} |",
        "",
        f"- student (atoms) model-only vs GCN teacher: {model['student_atoms'] / model['teacher_gcn']:.1f}x "
        f"(target >= 5x); vs GINE teacher: {model['student_atoms'] / model['teacher_gine']:.1f}x (target >= 30x)",
        f"- student (fingerprint) model-only vs GCN: {model['student_fingerprint'] / model['teacher_gcn']:.1f}x; "
        f"vs GINE: {model['student_fingerprint'] / model['teacher_gine']:.1f}x",
        "- end-to-end / parse-only (target >= 0.5): "
        + "; ".join(
            f"{name.removeprefix('student_')} {e2e[name] / e2e['rdkit_parse_only']:.2f}"
            for name in names
            if name.startswith("student_")
        ),
    ]
    if big:
        lines.append(
            f"- `gallon predict` (atoms student, parquet in and out, chunks of 2,000): "
            f"{big['molecules']:,} SMILES in {big['seconds']:,.0f} s ({big['rate']:,.0f} mol/s), "
            f"peak RSS {big['peak_rss_mib']:,.0f} MiB"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lipo")
    parser.add_argument("--molecules", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=1_000_000, help="SMILES for the gallon predict run; 0 skips it")
    args = parser.parse_args()
    torch.set_num_threads(1)
    smiles = valid_smiles(args.dataset, args.molecules)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        students = {inputs: student_checkpoint(workdir / f"{inputs}.pt", inputs, smiles) for inputs in STUDENT_INPUTS}
        model = model_only([Chem.MolFromSmiles(smi) for smi in smiles], students, args.repeats)
        e2e = end_to_end(smiles, students, args.repeats)
        big = predict_million(smiles, args.big, workdir) if args.big else None
    print(report(args.dataset, len(smiles), model, e2e, big))


if __name__ == "__main__":
    main()
