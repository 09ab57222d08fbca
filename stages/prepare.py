"""prepare: dataset -> molecules.parquet (the spine), rejected.csv, conflicts.csv, summary.json."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.artifacts import ROOT, stage_dir, write_json, write_parquet
from pipeline.datasets import MOLECULENET, locate_moleculenet, read_table
from pipeline.params import load_params
from pipeline.spine import build_spine


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    dataset = params.dataset
    if dataset.csv is None:
        spec = MOLECULENET[dataset.name]
        path = locate_moleculenet(spec, ROOT / "downloads")
        tasks, task_type, smiles_column = list(spec.target_columns), spec.task_type, spec.smiles_column
    else:
        path = Path(dataset.csv.path)
        tasks, task_type = list(dataset.csv.target_columns), dataset.csv.task_type
        smiles_column = dataset.csv.smiles_column
    if dataset.duplicates == "mean" and task_type == "classification":
        raise SystemExit(
            "dataset.duplicates: mean only makes sense for regression; "
            "use drop_conflicting or keep_first for classification"
        )
    table = read_table(path, smiles_column, tuple(tasks))
    spine = build_spine(
        table,
        tasks,
        fragments=dataset.fragments,
        duplicates=dataset.duplicates,
        strict=dataset.strict,
        split_method=params.split.method,
        train=params.split.train,
        valid=params.split.valid,
        seed=params.split.seed,
    )
    out = stage_dir("prepare")
    write_parquet(out / "molecules.parquet", spine.molecules)
    spine.rejected.to_csv(out / "rejected.csv", index=False)
    spine.conflicts.to_csv(out / "conflicts.csv", index=False)
    summary = {
        "task": {"dataset": dataset.name, "tasks": tasks, "task_type": task_type},
        "source": str(path.name),
        "fragments": dataset.fragments,
        "duplicates": dataset.duplicates,
        **spine.summary,
    }
    write_json(out / "summary.json", summary)
    print(
        f"prepare: {summary['rows_in']} rows in, {summary['molecules_out']} molecules out, "
        f"rejected {summary['rejected_by_reason'] or 'none'}, split {summary['split_sizes']}",
        file=sys.stderr,
    )
