"""The describe prompt, built as in the paper: role, SMILES, optional picture, optional bond list, question.

The text is deterministic and versioned: `PROMPT_TEMPLATE_VERSION` and the full prompt text are
part of the describe cache key, so any change to the wording here must bump the version.
"""

from __future__ import annotations

from rdkit import Chem

PROMPT_TEMPLATE_VERSION = "gallon-v1"

_ANALYSE = "Analyse the functional groups and the structure of this molecule"

DATASET_QUESTIONS: dict[str, str] = {
    "bace": (
        f"{_ANALYSE}, and explain whether it is likely to inhibit human beta-secretase 1 (BACE-1), "
        "an aspartic protease targeted in Alzheimer's disease. Conclude with your prediction: inhibitor or not."
    ),
    "bbbp": (
        f"{_ANALYSE}, with attention to its size, polarity, hydrogen bonding and lipophilicity, and explain "
        "whether it is likely to cross the blood-brain barrier. Conclude with your prediction: penetrates or not."
    ),
    "clintox": (
        f"{_ANALYSE}, and explain whether it is likely to be approved by the FDA and whether it is likely to "
        "fail clinical trials for reasons of toxicity. Conclude with both predictions."
    ),
    "hiv": (
        f"{_ANALYSE}, and explain whether it is likely to inhibit the replication of HIV. "
        "Conclude with your prediction: active or inactive."
    ),
    "esol": (
        f"{_ANALYSE}, and explain which of its features increase or decrease its solubility in water. "
        "Conclude with an estimate of its aqueous solubility as log10 of mol/L."
    ),
    "freesolv": (
        f"{_ANALYSE}, and explain how its features affect its hydration free energy, the free energy of "
        "transferring it from the gas phase into water. Conclude with an estimate in kcal/mol."
    ),
    "lipo": (
        f"{_ANALYSE}, and explain how its features affect its lipophilicity. Conclude with an estimate of its "
        "octanol/water distribution coefficient, logD at pH 7.4."
    ),
    "tox21": (
        f"{_ANALYSE}, and explain whether it is likely to be active in the Tox21 toxicity assays: nuclear "
        "receptor signalling (androgen receptor, estrogen receptor, aryl hydrocarbon receptor, aromatase, "
        "PPAR-gamma) and stress response (antioxidant response element, ATAD5, heat shock, mitochondrial "
        "membrane potential, p53). Conclude with the assays in which it is likely to be active."
    ),
    "sider": (
        f"{_ANALYSE}, and explain which side effects it is likely to cause if used as a drug, by system organ "
        "class (for example hepatobiliary, cardiac, nervous system, skin, gastrointestinal disorders). "
        "Conclude with the most likely classes of side effects."
    ),
}

_BOND_WORDS = {
    Chem.BondType.SINGLE: "single",
    Chem.BondType.DOUBLE: "double",
    Chem.BondType.TRIPLE: "triple",
    Chem.BondType.AROMATIC: "aromatic",
    Chem.BondType.DATIVE: "dative",
}


def bond_list(mol: Chem.Mol) -> str:
    """One line per bond, in RDKit's bond order, naming both atoms' indices and elements."""
    if mol.GetNumBonds() == 0:
        atoms = mol.GetNumAtoms()
        return f"The molecule has no bonds between its heavy atoms ({atoms} separate atom{'s' if atoms != 1 else ''})."
    lines = []
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtom(), bond.GetEndAtom()
        kind = _BOND_WORDS.get(bond.GetBondType(), str(bond.GetBondType()).lower())
        first, second = f"atom {a.GetIdx()} ({a.GetSymbol()})", f"atom {b.GetIdx()} ({b.GetSymbol()})"
        article = "an" if kind[0] in "aeiou" else "a"
        lines.append(f"{first} is connected with {second} by {article} {kind} bond")
    return "\n".join(lines)


def generic_question(task_names: list[str], task_type: str) -> str:
    """The question for a user's own CSV, built from its target columns and task type."""
    if not task_names:
        raise ValueError("a question for a user dataset needs at least one task name")
    tasks = ", ".join(task_names)
    if task_type == "classification":
        return (
            f"{_ANALYSE}, and explain how they relate to the following properties: {tasks}. "
            "For each property, conclude whether the molecule is likely to have it (1) or not (0)."
        )
    if task_type == "regression":
        return (
            f"{_ANALYSE}, and explain how they affect the following measured quantities: {tasks}. "
            "For each quantity, conclude with a numerical estimate."
        )
    raise ValueError(f"unknown task type {task_type!r}; allowed: classification, regression")


def dataset_question(dataset: str, task_names: list[str], task_type: str) -> str:
    """The paper-style question for a MoleculeNet set, or the generic one for a user CSV ('csv')."""
    if dataset in DATASET_QUESTIONS:
        return DATASET_QUESTIONS[dataset]
    if dataset == "csv":
        return generic_question(task_names, task_type)
    raise ValueError(f"no question for dataset {dataset!r}; allowed: {', '.join(DATASET_QUESTIONS)} or 'csv'")


def build_prompt(
    smiles: str,
    mol: Chem.Mol,
    dataset: str,
    task_names: list[str],
    task_type: str,
    include_bonds: bool,
    include_image: bool,
) -> str:
    """The full text sent for one molecule; mentions the picture only when one is really attached."""
    parts = ["You are an expert in chemistry and drug discovery."]
    if include_image:
        parts.append(f"The attached picture shows the 2D structure of a molecule whose SMILES is {smiles}.")
    else:
        parts.append(f"Consider the molecule whose SMILES is {smiles}.")
    if include_bonds:
        parts.append(f"Its bonds, with atoms numbered from 0, are:\n{bond_list(mol)}")
    parts.append(dataset_question(dataset, task_names, task_type))
    return "\n\n".join(parts)
