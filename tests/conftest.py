"""Shared fixtures: hand-written molecules that need no download, and the real MoleculeNet files when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.llm_fixtures"]

TESTS = Path(__file__).parent
PROJECT = TESTS.parent
SMALL_CSV = TESTS / "data" / "small_molecules.csv"


def _shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("GALLON_DATA_DIR"), PROJECT.parent / "shared" / "data" / "moleculenet"):
        if candidate and (Path(candidate) / "SHA256SUMS").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def small_csv() -> Path:
    return SMALL_CSV


@pytest.fixture
def moleculenet_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real MoleculeNet CSVs; tests using this are skipped where they are not on disk."""
    found = _shared_data_dir()
    if found is None:
        pytest.skip("MoleculeNet CSVs not present (set GALLON_DATA_DIR)")
    monkeypatch.setenv("GALLON_DATA_DIR", str(found))
    return found
