import numpy as np
import pandas as pd
import pytest

from pipeline.spine import StrictModeError, build_spine

SPLIT = {"split_method": "random", "train": 0.6, "valid": 0.2, "seed": 0}


def _table(rows):
    frame = pd.DataFrame(rows, columns=["raw_smiles", "y"])
    frame.insert(0, "row", range(1, len(frame) + 1))
    return frame


def _build(rows, duplicates="drop_conflicting", strict=False, fragments="keep_all"):
    return build_spine(_table(rows), ["y"], fragments=fragments, duplicates=duplicates, strict=strict, **SPLIT)


MOLECULES = [("c1ccccc1", 1), ("CCN", 0), ("CCCl", 1), ("c1ccncc1", 0), ("CC(=O)O", 1), ("CCOCC", 0)]


def test_conflicting_duplicates_are_dropped_and_reported():
    spine = _build([*MOLECULES, ("CCO", 1), ("OCC", 0)])
    assert "CCO" not in set(spine.molecules["key"])
    assert spine.conflicts[["key", "source_rows", "action"]].to_dict("records") == [
        {"key": "CCO", "source_rows": "7;8", "action": "dropped"}
    ]
    assert spine.summary["conflicting_keys_dropped"] == 1


def test_agreeing_duplicates_merge_into_one_row_per_key():
    spine = _build([*MOLECULES, ("CCO", 1), ("OCC", 1), ("C(C)O", np.nan)])
    assert (spine.molecules["key"] == "CCO").sum() == 1
    row = spine.molecules.set_index("key").loc["CCO"]
    assert row["y"] == 1 and row["source_rows"] == "7;8;9"
    assert spine.summary["duplicate_rows_merged"] == 2


def test_keep_first_and_mean_policies():
    rows = [*MOLECULES, ("CCO", 1.0), ("OCC", 3.0)]
    assert _build(rows, "keep_first").molecules.set_index("key").loc["CCO", "y"] == 1.0
    assert _build(rows, "mean").molecules.set_index("key").loc["CCO", "y"] == 2.0


def test_bad_rows_are_rejected_with_reasons_and_counts_add_up():
    rows = [*MOLECULES, ("c1cccc1", 1), ("", 0), (np.nan, 1), ("CCO", np.nan), ("CCO", 1), ("OCC", 0), ("CC#N", np.nan)]
    spine = _build(rows)
    assert spine.rejected["reason"].tolist() == ["kekulize", "empty", "empty", "no_labels"]
    assert spine.rejected["row"].tolist() == [7, 8, 9, 13]
    summary = spine.summary
    assert summary["rows_in"] == len(rows) == summary["rows_accounted"]
    assert summary["molecules_out"] == len(MOLECULES)
    assert spine.molecules["y"].notna().all()


def test_missing_labels_stay_missing_in_multitask_data():
    table = pd.DataFrame(
        {
            "row": [1, 2, 3, 4, 5],
            "raw_smiles": ["CCO", "CCN", "CCC", "c1ccccc1", "CCCl"],
            "a": [1, np.nan, 0, 1, 0],
            "b": [np.nan, 1, 0, 0, 1],
        }
    )
    spine = build_spine(
        table,
        ["a", "b"],
        fragments="keep_all",
        duplicates="drop_conflicting",
        strict=False,
        split_method="random",
        train=0.6,
        valid=0.2,
        seed=0,
    )
    molecules = spine.molecules.set_index("key")
    assert np.isnan(molecules.loc["CCO", "b"]) and np.isnan(molecules.loc["CCN", "a"])
    assert spine.summary["labels_observed"] == {"a": 4, "b": 4}


def test_strict_mode_fails_naming_the_row():
    with pytest.raises(StrictModeError, match="row 7: SMILES 'c1cccc1' rejected \\(kekulize"):
        _build([*MOLECULES, ("c1cccc1", 1)], strict=True)


def test_one_key_never_lands_in_two_parts():
    rows = [(smiles, label) for smiles, label in MOLECULES] + [("OCC", 1), ("CCO", 1), ("C(O)C", 1)]
    spine = _build(rows)
    assert spine.molecules["key"].is_unique
