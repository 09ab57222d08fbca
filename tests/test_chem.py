import math

import pytest
from rdkit import Chem

from pipeline.chem import molecules_from_keys, parse_smiles


def test_two_spellings_share_one_key():
    assert parse_smiles("OCC").key == parse_smiles("C(O)C").key == "CCO"


def test_key_keeps_stereo_and_isotopes():
    assert parse_smiles("C[C@H](N)C(=O)O").key != parse_smiles("C[C@@H](N)C(=O)O").key
    assert parse_smiles("[13CH3]O").key != parse_smiles("CO").key
    assert "@" in parse_smiles("N[C@@H](C)C(=O)O").key


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("Cc1nc(sc1)[NH]=C(\\N)N", "valence"),  # BBBP
        ("O=N([O-])C1=C(CN=C1NCCSCc2ncccc2)Cc3ccccc3", "valence"),  # BBBP
        ("c1cccc1", "kekulize"),
        ("C1CC", "parse"),
        ("not a smiles", "parse"),
        ("", "empty"),
        ("   ", "empty"),
        (float("nan"), "empty"),
        (None, "empty"),
        ("[H][H]", "no_heavy_atoms"),
    ],
)
def test_rejections_carry_a_reason_and_rdkit_message(smiles, reason):
    parsed = parse_smiles(smiles)
    assert parsed.mol is None and parsed.key is None
    assert parsed.reason == reason
    assert parsed.message


def test_trailing_spaces_are_ignored():
    assert parse_smiles("CCO  ").key == "CCO"


def test_fragment_policies():
    salt = "CC(=O)[O-].[Na+]"
    assert parse_smiles(salt, "keep_all").key == "CC(=O)[O-].[Na+]"
    assert parse_smiles(salt, "largest").key == "CC(=O)[O-]"
    assert parse_smiles("CN.Cl", "strip_salts").key == "CN"
    # stripping never leaves nothing: a salt alone is kept whole
    assert parse_smiles("[Na+].[Cl-]", "strip_salts").key == "[Cl-].[Na+]"


@pytest.mark.parametrize("smiles", ["C", "Br", "[Na+].[Cl-]", "[Cu+2].[O-]S(=O)(=O)[O-]", "[U]"])
def test_tiny_and_odd_molecules_parse(smiles):
    parsed = parse_smiles(smiles)
    assert parsed.mol is not None and not math.isnan(parsed.mol.GetNumAtoms())


def test_re_reading_keys_keeps_rdkit_quiet(capsys):
    """Stages re-read prepare's keys for every molecule: RDKit's notes on them would flood the stage log."""
    keys = ["Cl.[H]", "CCO"]  # canonical, as prepare writes them
    molecules = molecules_from_keys(keys)
    assert [Chem.MolToSmiles(mol) for mol in molecules] == keys
    assert capsys.readouterr().err == ""
    Chem.MolFromSmiles(keys[0])  # the same molecule read without it does log
    assert "not removing hydrogen atom" in capsys.readouterr().err
