"""prepare: dataset -> molecules.parquet (the spine), rejected.csv, conflicts.csv, summary.json."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from pipeline.artifacts import ROOT, stage_dir, write_json, write_parquet
from pipeline.datasets import MOLECULENET, check_labels, locate_moleculenet, read_table
from pipeline.params import DatasetParams, ParamsError, load_params
from pipeline.spine import build_spine


def _source(dataset: DatasetParams) -> tuple[Path, list[str], str, str]:
    """(csv path, task columns, task type, SMILES column) for a MoleculeNet name or the user's CSV."""
    if dataset.csv is None:
        spec = MOLECULENET[dataset.name]
        path = locate_moleculenet(spec, ROOT / "downloads")
        return path, list(spec.target_columns), spec.task_type, spec.smiles_column
    csv = dataset.csv
    return Path(csv.path), list(csv.target_columns), csv.task_type, csv.smiles_column


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    dataset = params.dataset
    path, tasks, task_type, smiles_column = _source(dataset)
    if dataset.duplicates == "mean" and task_type == "classification":
        raise ParamsError(
            "dataset.duplicates: mean only makes sense for regression; "
            "allowed for classification: drop_conflicting, keep_first"
        )
    table = read_table(path, smiles_column, tuple(tasks))
    check_labels(table, tuple(tasks), task_type, path)
    with warnings.catch_warnings(record=True) as caught:  # reported as one line each and kept in the summary
        warnings.simplefilter("always")
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
    notes = [str(warning.message) for warning in caught]
    out = stage_dir("prepare")
    write_parquet(out / "molecules.parquet", spine.molecules)
    spine.rejected.to_csv(out / "rejected.csv", index=False)
    spine.conflicts.to_csv(out / "conflicts.csv", index=False)
    summary = {
        "task": {"dataset": dataset.name, "tasks": tasks, "task_type": task_type},
        "source": str(path.name),
        "fragments": dataset.fragments,
        "duplicates": dataset.duplicates,
        "strict": dataset.strict,
        "warnings": notes,
        **spine.summary,
    }
    write_json(out / "summary.json", summary)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    print(
        f"prepare: {summary['rows_in']} rows in, {summary['molecules_out']} molecules out, "
        f"rejected {summary['rejected_by_reason'] or 'none'}, split {summary['split_sizes']}",
        file=sys.stderr,
    )
