"""The describe prompt: paper-style parts, each present exactly when asked for, deterministic."""

from __future__ import annotations

import pytest
from rdkit import Chem

from pipeline.params import MOLECULENET_NAMES
from pipeline.prompts import DATASET_QUESTIONS, PROMPT_TEMPLATE_VERSION, bond_list, build_prompt


def test_template_version_is_pinned() -> None:
    assert PROMPT_TEMPLATE_VERSION == "gallon-v1"


def test_bond_list_names_atoms_elements_and_bond_orders() -> None:
    assert bond_list(Chem.MolFromSmiles("CC=O")).splitlines() == [
        "atom 0 (C) is connected with atom 1 (C) by a single bond",
        "atom 1 (C) is connected with atom 2 (O) by a double bond",
    ]
    assert "by a triple bond" in bond_list(Chem.MolFromSmiles("CC#N"))
    assert bond_list(Chem.MolFromSmiles("c1ccncc1")).count("by an aromatic bond") == 6
    assert "by a dative bond" in bond_list(Chem.MolFromSmiles("[NH3]->[Pt](Cl)(Cl)<-[NH3]"))


@pytest.mark.parametrize(
    ("smiles", "atoms"), [("C", "1 separate atom)"), ("Br", "1 separate atom)"), ("[Na+].[Cl-]", "2 separate atoms")]
)
def test_bond_list_says_when_there_are_no_bonds(smiles: str, atoms: str) -> None:
    text = bond_list(Chem.MolFromSmiles(smiles))
    assert text.startswith("The molecule has no bonds")
    assert atoms in text


def test_every_moleculenet_set_has_its_own_question() -> None:
    assert set(DATASET_QUESTIONS) == set(MOLECULENET_NAMES)
    assert len(set(DATASET_QUESTIONS.values())) == len(DATASET_QUESTIONS)
    assert "blood-brain barrier" in DATASET_QUESTIONS["bbbp"]
    assert "solubility" in DATASET_QUESTIONS["esol"]
    assert "BACE-1" in DATASET_QUESTIONS["bace"]


def _prompt(smiles: str = "CC(=O)O", **overrides) -> str:
    args = dict(dataset="bbbp", task_names=["p_np"], task_type="classification", include_bonds=True, include_image=True)
    args.update(overrides)
    return build_prompt(smiles, Chem.MolFromSmiles(smiles), **args)


def test_prompt_has_role_smiles_picture_bonds_and_question() -> None:
    text = _prompt()
    assert "expert in chemistry" in text
    assert "CC(=O)O" in text
    assert "attached picture" in text
    assert "atom 1 (C) is connected with atom 2 (O) by a double bond" in text
    assert text.endswith(DATASET_QUESTIONS["bbbp"])
    assert text == _prompt()


def test_picture_and_bonds_are_mentioned_only_when_included() -> None:
    text = _prompt(include_image=False, include_bonds=False)
    assert "picture" not in text and "image" not in text
    assert "connected with" not in text
    assert "CC(=O)O" in text


def test_prompt_for_a_molecule_without_bonds() -> None:
    assert "no bonds" in _prompt("[Na+].[Cl-]")


def test_user_csv_question_is_built_from_task_names_and_type() -> None:
    classification = _prompt(dataset="csv", task_names=["active", "toxic"], task_type="classification")
    assert "active, toxic" in classification and "(1) or not (0)" in classification
    regression = _prompt(dataset="csv", task_names=["logS"], task_type="regression")
    assert "logS" in regression and "numerical estimate" in regression


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "qm9"}, "no question for dataset 'qm9'"),
        ({"dataset": "csv", "task_names": []}, "at least one task name"),
        ({"dataset": "csv", "task_type": "ranking"}, "unknown task type 'ranking'"),
    ],
)
def test_bad_dataset_or_task_spec_is_a_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _prompt(**overrides)
