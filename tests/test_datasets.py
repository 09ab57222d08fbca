"""Reading data files: a user's messy CSV, and the real MoleculeNet files whose known bad rows must be counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.datasets import DatasetError, check_labels, read_table
from pipeline.spine import build_spine
from stages import prepare

SPLIT = {"split_method": "random", "train": 0.6, "valid": 0.2, "seed": 0}


def _write(tmp_path: Path, text: str, newline: str = "\n") -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_quirky_csv_reads_row_by_row(tmp_path, newline):
    text = (
        'name,smiles,y\n"ethanol, absolute",CCO  ,1\nblank,,0\nspaces,   ,1\nnan,NaN,0\n'
        '"pyridine, ""pure""",c1ccncc1,1\nbenzene,c1ccccc1 ,0\n\n'
    )
    table = read_table(_write(tmp_path, text, newline), "smiles", ("y",))
    assert table["row"].tolist() == [1, 2, 3, 4, 5, 6]  # the blank trailing line is no row
    assert table["y"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    spine = build_spine(table, ["y"], fragments="keep_all", duplicates="drop_conflicting", strict=False, **SPLIT)
    assert spine.rejected[["row", "reason"]].to_dict("records") == [
        {"row": 2, "reason": "empty"},
        {"row": 3, "reason": "empty"},
        {"row": 4, "reason": "empty"},
    ]
    assert spine.rejected["message"].str.contains("missing SMILES").all()
    assert sorted(spine.molecules["key"]) == ["CCO", "c1ccccc1", "c1ccncc1"]


def test_empty_label_cells_are_missing_not_zero(tmp_path):
    table = read_table(_write(tmp_path, "smiles,a,b\nCCO,1,\nCCN, ,0\n"), "smiles", ("a", "b"))
    assert np.isnan(table.loc[0, "b"]) and np.isnan(table.loc[1, "a"]) and table.loc[1, "b"] == 0.0


@pytest.mark.parametrize("value", ["active", "inf", "-inf", "1e999"])
def test_a_non_numeric_label_names_its_row_and_column(tmp_path, value):
    path = _write(tmp_path, f"smiles,y\nCCO,1\nCCN,{value}\n")
    with pytest.raises(DatasetError, match=r"column 'y' row 2 holds .*not a finite number"):
        read_table(path, "smiles", ("y",))


def test_a_missing_column_lists_the_columns_there_are(tmp_path):
    path = _write(tmp_path, "SMILES,activity\nCCO,1\n")
    expected = r"no column\(s\) \['smiles', 'y'\]; its columns are \['SMILES', 'activity'\]"
    with pytest.raises(DatasetError, match=expected):
        read_table(path, "smiles", ("y",))


@pytest.mark.parametrize(("text", "expected"), [("", "is empty"), ("smiles,y\n", "no data rows")])
def test_empty_files_are_named(tmp_path, text, expected):
    with pytest.raises(DatasetError, match=expected):
        read_table(_write(tmp_path, text), "smiles", ("y",))


def test_classification_labels_must_be_binary(tmp_path):
    path = _write(tmp_path, "smiles,y\nCCO,1\nCCN,\nCCC,2\n")
    table = read_table(path, "smiles", ("y",))
    check_labels(table, ("y",), "regression", path)  # any number is a regression target
    with pytest.raises(DatasetError, match="column 'y' row 3 holds 2; classification labels must be 0 or 1"):
        check_labels(table, ("y",), "classification", path)


# --- the real files: known bad rows, and every row accounted for ------------------------------------------

REAL = {  # name: (rows rejected, tasks)
    "bbbp": (11, 1),
    "clintox": (4, 2),
    "tox21": (8, 12),
    "hiv": (7, 1),
    "esol": (0, 1),
}


def _prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({"dataset": {"name": name}, "split": {"method": "random"}}))
    prepare.main()
    out = tmp_path / "artifacts" / "prepare"
    return (
        json.loads((out / "summary.json").read_text()),
        pd.read_csv(out / "rejected.csv"),
        pd.read_parquet(out / "molecules.parquet"),
    )


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_moleculenet_files_reject_their_known_bad_rows(moleculenet_dir, tmp_path, monkeypatch, name):
    n_rejected, n_tasks = REAL[name]
    summary, rejected, molecules = _prepare(tmp_path, monkeypatch, name)
    assert len(rejected) == n_rejected == sum(summary["rejected_by_reason"].values())
    assert set(rejected["reason"]) <= {"valence", "kekulize"}
    assert rejected["row"].between(1, summary["rows_in"]).all() and rejected["message"].str.len().gt(0).all()
    assert summary["rows_in"] == summary["rows_accounted"]
    assert len(summary["task"]["tasks"]) == n_tasks
    assert summary["task"]["task_type"] == ("regression" if name == "esol" else "classification")
    assert molecules["key"].is_unique and len(molecules) == summary["molecules_out"]
    if name == "tox21":  # missing labels stay missing: never filled with 0
        labels = molecules[summary["task"]["tasks"]]
        values = labels.to_numpy()
        assert labels.isna().any().all() and set(np.unique(values[~np.isnan(values)])) == {0.0, 1.0}
        assert summary["labels_observed"] == {task: int(labels[task].notna().sum()) for task in labels}


def test_bbbp_rejects_the_two_molecules_named_in_the_issue(moleculenet_dir, tmp_path, monkeypatch):
    _, rejected, _ = _prepare(tmp_path, monkeypatch, "bbbp")
    assert {r"Cc1nc(sc1)\[NH]=C(\N)N", "O=N([O-])C1=C(CN=C1NCCSCc2ncccc2)Cc3ccccc3"} <= set(rejected["raw_smiles"])
