"""The offline describer: honest about what it is, deterministic, informative, and never stuck on odd molecules."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.providers.base import Completion, DescribeRequest, ProviderError
from pipeline.providers.offline import OfflineDescriber, describe_smiles


def _complete(smiles: str) -> Completion:
    request = DescribeRequest(molecule_key=smiles, smiles=smiles, prompt="any question", image_png=None)
    return asyncio.run(OfflineDescriber().complete(request))


def test_completion_is_free_final_and_says_it_is_not_an_llm() -> None:
    completion = _complete("CC(=O)O")
    assert completion.finish_reason == "stop"
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)
    assert completion.text.startswith("RDKit-derived description")
    assert "not an LLM answer" in completion.text
    assert "carboxylic acid (1)" in completion.text
    assert "MW 60" in completion.text
    assert "ester" not in completion.text


@pytest.mark.parametrize(
    ("smiles", "group"),
    [
        ("CCO", "alcohol (1)"),
        ("Oc1ccccc1", "phenol (1)"),
        ("CC(=O)OC", "ester (1)"),
        ("CC(=O)NC", "amide (1)"),
        ("CCN", "primary amine (1)"),
        ("CCNCC", "secondary amine (1)"),
        ("CCN(CC)CC", "tertiary amine (1)"),
        ("Nc1ccccc1", "aromatic amine (aniline-like) (1)"),
        ("[O-][N+](=O)c1ccccc1", "nitro (1)"),
        ("CC#N", "nitrile (1)"),
        ("NS(=O)(=O)c1ccccc1", "sulfonamide (1)"),
        ("CC(C)=O", "ketone (1)"),
        ("CC=O", "aldehyde (1)"),
        ("CCOCC", "ether (1)"),
        ("CCS", "thiol (1)"),
        ("NC(N)=O", "urea (1)"),
        ("NC(N)=N", "guanidine (1)"),
        ("FC(F)(F)c1ccccc1", "trifluoromethyl (1)"),
        ("Clc1ccc(Cl)cc1", "chlorine atom (2)"),
        ("CC(=O)[O-].[Na+]", "carboxylate anion (1)"),
    ],
)
def test_functional_groups_are_named_with_counts(smiles: str, group: str) -> None:
    assert group in describe_smiles(smiles)


def test_rings_aromaticity_and_stereo_are_described() -> None:
    nicotine = describe_smiles("CN1CCC[C@H]1c1cccnc1")
    assert "Rings: 2 in 2 systems" in nicotine
    assert "1 five-membered aliphatic ring with 1 N" in nicotine
    assert "1 six-membered aromatic ring with 1 N" in nicotine
    assert "1 aromatic, 1 heteroaromatic" in nicotine
    assert "1 stereocentre (1 specified)" in nicotine
    assert "Rings: 2 in 1 system (2 six-membered aromatic carbocycles)" in describe_smiles("c1ccc2ccccc2c1")
    assert "Rings: none, acyclic." in describe_smiles("CCCC")


def test_lipinski_verdict_counts_violations() -> None:
    assert "Lipinski rule of five: passes, 0 violations" in describe_smiles("CC(=O)Nc1ccc(O)cc1")
    long_acid = describe_smiles("C" * 40 + "C(=O)O")
    assert "Lipinski rule of five: fails, 2 violations (MW > 500, logP > 5)" in long_acid
    assert "very lipophilic" in long_acid


@pytest.mark.parametrize(
    ("smiles", "expected"),
    [
        ("C", "Formula CH4, 1 heavy atom"),
        ("Br", "bromine atom (1)"),
        (
            "[Na+].[Cl-]",
            "2 fragments (Na+, Cl-: a salt or mixture), net charge 0 with 2 charged atoms, metal atoms 1 Na",
        ),
        ("N[Pt](N)(Cl)Cl", "metal atoms 1 Pt"),
        ("[NH3]->[Pt](Cl)(Cl)<-[NH3]", "metal atoms 1 Pt"),
        ("[Fe+2].c1cc[cH-]c1.c1cc[cH-]c1", "3 fragments"),
        ("C[N+](C)(C)C", "net charge +1 with 1 charged atom"),
    ],
)
def test_odd_molecules_are_described(smiles: str, expected: str) -> None:
    text = _complete(smiles).text
    assert expected in text
    assert "Lipinski rule of five" in text


def test_same_molecule_same_text_and_different_molecules_differ() -> None:
    drug = "O1CC[C@@H](NC(=O)[C@@H](Cc2cc3cc(ccc3nc2N)-c2ccccc2C)C)CC1(C)C"
    assert _complete(drug).text == _complete(drug).text
    texts = {_complete(s).text for s in (drug, "CC(=O)Nc1ccc(O)cc1", "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "CCO")}
    assert len(texts) == 4


@pytest.mark.parametrize("smiles", ["C1CC", "not a smiles", ""])
def test_unreadable_smiles_is_a_provider_error(smiles: str) -> None:
    with pytest.raises(ProviderError) as caught:
        _complete(smiles)
    assert caught.value.kind == "invalid_smiles"
    assert not caught.value.retryable


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="supported: 'rdkit-descriptors'"):
        OfflineDescriber(model="gpt-4o")
