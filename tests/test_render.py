"""Pictures: real PNGs of the requested size, identical bytes on every run, failures recorded."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from pipeline.render import image_name, image_sha256, render_molecules

MOLECULES = {
    "methane": "C",
    "hydrogen bromide": "Br",
    "sodium chloride": "[Na+].[Cl-]",
    "cisplatin": "N[Pt](N)(Cl)Cl",
    "ferrocene": "[Fe+2].c1cc[cH-]c1.c1cc[cH-]c1",
    "(S)-nicotine": "CN1CCC[C@H]1c1cccnc1",
    "caffeine": "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "penicillin G": "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",
}


def test_image_name_is_a_short_stable_hash_of_the_key() -> None:
    name = image_name("CCO")
    assert name == hashlib.sha256(b"CCO").hexdigest()[:16] + ".png"
    assert image_name("CCO") == name
    assert image_name("OCC") != name


def test_every_molecule_draws_to_a_png_of_the_requested_size(tmp_path) -> None:
    keys = list(MOLECULES)
    index = render_molecules(keys, list(MOLECULES.values()), tmp_path, size=160, workers=1)
    assert list(index.columns) == ["molecule_key", "image", "status", "error"]
    assert index["molecule_key"].tolist() == keys
    assert (index["status"] == "ok").all(), index[index["status"] != "ok"]
    for key, name in zip(index["molecule_key"], index["image"], strict=True):
        assert name == image_name(key)
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
            assert image.size == (160, 160)
            image.load()


def test_bytes_are_identical_across_runs_and_worker_counts(tmp_path) -> None:
    keys, smiles = list(MOLECULES), list(MOLECULES.values())
    first = render_molecules(keys, smiles, tmp_path / "a", size=200, workers=1)
    second = render_molecules(keys, smiles, tmp_path / "b", size=200, workers=2)
    assert first.equals(second)
    for name in first["image"]:
        assert image_sha256(tmp_path / "a" / name) == image_sha256(tmp_path / "b" / name)
    assert (
        image_sha256(tmp_path / "a" / first["image"][0])
        == hashlib.sha256((tmp_path / "a" / first["image"][0]).read_bytes()).hexdigest()
    )


def test_a_molecule_that_cannot_be_drawn_is_recorded_not_fatal(tmp_path) -> None:
    index = render_molecules(["good", "bad", "empty"], ["CCO", "C1CC", ""], tmp_path, size=100, workers=2)
    assert index["status"].tolist() == ["ok", "failed", "failed"]
    assert index["image"].isna().tolist() == [False, True, True]
    assert "parse" in index["error"][1]
    assert "no atoms" in index["error"][2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [image_name("good")]


def test_keys_and_smiles_must_pair_up(tmp_path) -> None:
    with pytest.raises(ValueError, match="2 keys but 1 SMILES"):
        render_molecules(["a", "b"], ["C"], tmp_path, size=100, workers=1)
