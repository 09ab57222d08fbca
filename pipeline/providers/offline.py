"""The offline describer: a deterministic, RDKit-computed description standing in for an LLM answer.

It lets the whole pipeline run without a network or an API key. The text is embedded and used as
the "LLM prior", so it is written to carry signal: group names with counts, ring systems, and
physicochemical numbers with qualitative words beside them. It says plainly what it is.
"""

from __future__ import annotations

from collections import Counter

from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

from pipeline.providers.base import Completion, DescribeRequest, ProviderError

DISCLAIMER = "RDKit-derived description, computed by the RDKit toolkit; not an LLM answer."

# (name, SMARTS); counts are unique matches. Order is the order in the text.
FUNCTIONAL_GROUPS: tuple[tuple[str, str], ...] = (
    ("carboxylic acid", "[CX3](=O)[OX2H1]"),
    ("carboxylate anion", "[CX3](=O)[OX1-]"),
    ("ester", "[#6][CX3](=O)[OX2H0][#6]"),
    ("amide", "[NX3][CX3](=[OX1])[#6]"),
    ("beta-lactam", "O=[#6]1[#6][#6][#7]1"),
    ("imide", "[CX3](=O)[NX3][CX3](=O)"),
    ("carbamate", "[NX3][CX3](=O)[OX2][#6]"),
    ("urea", "[NX3][CX3](=[OX1])[NX3]"),
    ("guanidine", "[NX3][CX3](=[NX2])[NX3]"),
    ("amidine", "[#6][CX3](=[NX2;!a])[NX3]"),
    ("aldehyde", "[CX3H1](=O)[#6]"),
    ("ketone", "[#6][CX3](=O)[#6]"),
    ("alcohol", "[OX2H][CX4]"),
    ("phenol", "[OX2H]c"),
    ("ether", "[OX2;!a;!$(O[#6]=[O,S,N])]([#6])[#6]"),
    ("epoxide", "[OX2r3]1[#6r3][#6r3]1"),
    ("primary amine", "[NX3;H2;+0][CX4]"),
    ("secondary amine", "[NX3;H1;+0;!a]([#6;!$([#6]=[O,S,N])])[#6;!$([#6]=[O,S,N])]"),
    (
        "tertiary amine",
        "[NX3;H0;+0;!a]([#6;!$([#6]=[O,S,N])])([#6;!$([#6]=[O,S,N])])[#6;!$([#6]=[O,S,N])]",
    ),
    ("aromatic amine (aniline-like)", "[NX3;H2,H1;+0;!$(N[#6]=[O,S,N]);!$(NS(=O)=O)]c"),
    ("protonated or quaternary ammonium", "[NX4+]"),
    ("imine", "[CX3;!$(C-[NX3]);!$(C-[OX2])]=[NX2;!a]"),
    ("oxime", "[CX3]=[NX2][OX2H]"),
    ("hydrazine or hydrazide", "[NX3;!a][NX3;!a]"),
    ("azo", "[#6][NX2]=[NX2][#6]"),
    ("nitro", "[$([NX3](=O)=O),$([NX3+](=O)[O-])]"),
    ("nitrile", "[NX1]#[CX2]"),
    ("sulfonamide", "[SX4](=O)(=O)[NX3]"),
    ("sulfone", "[#6][SX4](=O)(=O)[#6]"),
    ("sulfonic acid or sulfonate", "[SX4](=O)(=O)[OX2H,OX1-]"),
    ("sulfoxide", "[#6][SX3](=O)[#6]"),
    ("thiol", "[SX2H]"),
    ("thioether", "[SX2;!a]([#6])[#6]"),
    ("phosphate or phosphonate", "[PX4](=O)"),
    ("acyl halide", "[CX3](=O)[F,Cl,Br,I]"),
    ("trifluoromethyl", "[CX4](F)(F)F"),
    ("fluorine atom", "[F;+0]"),
    ("chlorine atom", "[Cl;+0]"),
    ("bromine atom", "[Br;+0]"),
    ("iodine atom", "[I;+0]"),
    ("halide anion", "[F-,Cl-,Br-,I-]"),
    ("alkene C=C", "[CX3;!a]=[CX3;!a]"),
    ("alkyne C#C", "[CX2]#[CX2]"),
)
_PATTERNS = tuple((name, Chem.MolFromSmarts(smarts)) for name, smarts in FUNCTIONAL_GROUPS)

# atomic numbers of H He B C N O F Ne Si P S Cl Ar As Se Br Kr Te I Xe At Rn; every other element counts as a metal
NON_METALS = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86})
_SIZE_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _bin(value: float, edges: tuple[float, ...], words: tuple[str, ...]) -> str:
    """The word for the first bin whose upper edge exceeds value (the last word above all edges)."""
    for edge, word in zip(edges, words[:-1], strict=True):
        if value < edge:
            return word
    return words[-1]


def _composition(mol: Chem.Mol) -> str:
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    text = f"Formula {rdMolDescriptors.CalcMolFormula(mol)}, {_plural(mol.GetNumHeavyAtoms(), 'heavy atom')}"
    if len(fragments) > 1:
        parts = ", ".join(rdMolDescriptors.CalcMolFormula(fragment) for fragment in fragments)
        text += f", {len(fragments)} fragments ({parts}: a salt or mixture)"
    charge = Chem.GetFormalCharge(mol)
    charged = sum(1 for atom in mol.GetAtoms() if atom.GetFormalCharge())
    text += f", net charge {charge:+d}" if charge else ", net charge 0"
    if charged:
        text += f" with {_plural(charged, 'charged atom')}"
    metals = Counter(atom.GetSymbol() for atom in mol.GetAtoms() if atom.GetAtomicNum() not in NON_METALS)
    if metals:
        text += ", metal atoms " + ", ".join(f"{n} {element}" for element, n in sorted(metals.items()))
    stereo = Chem.FindMolChiralCenters(mol, includeUnassigned=True, useLegacyImplementation=False)
    if stereo:
        assigned = sum(1 for _, label in stereo if label != "?")
        text += f", {_plural(len(stereo), 'stereocentre')} ({assigned} specified)"
    return text + "."


def _groups(mol: Chem.Mol) -> str:
    counts = [(name, len(mol.GetSubstructMatches(pattern))) for name, pattern in _PATTERNS]
    found = [f"{name} ({count})" for name, count in counts if count]
    return "Functional groups: " + (", ".join(found) if found else "none of the common ones") + "."


def _ring_systems(atom_rings: list[set[int]]) -> int:
    """Rings that share atoms (fused, spiro, bridged) form one system."""
    systems: list[set[int]] = []
    for ring in atom_rings:
        merged = set(ring)
        for system in [s for s in systems if s & ring]:
            merged |= system
            systems.remove(system)
        systems.append(merged)
    return len(systems)


def _ring_kind(mol: Chem.Mol, ring: tuple[int, ...]) -> tuple[int, str, str]:
    """(size, aromatic or aliphatic, hetero atoms): the parts that name a kind of ring."""
    atoms = [mol.GetAtomWithIdx(i) for i in ring]
    hetero = Counter(atom.GetSymbol() for atom in atoms if atom.GetSymbol() != "C")
    kind = "aromatic" if all(atom.GetIsAromatic() for atom in atoms) else "aliphatic"
    return len(ring), kind, " and ".join(f"{n} {element}" for element, n in sorted(hetero.items()))


def _rings(mol: Chem.Mol) -> str:
    rings = mol.GetRingInfo().AtomRings()
    if not rings:
        return "Rings: none, acyclic."
    kinds = Counter(_ring_kind(mol, ring) for ring in rings)
    listed = []
    for (size, kind, hetero), n in sorted(kinds.items(), key=lambda item: (-item[1], item[0])):
        noun = ("ring" if hetero else "carbocycle") + ("s" if n > 1 else "")
        listed.append(
            f"{n} {_SIZE_WORDS.get(size, size)}-membered {kind} {noun}" + (f" with {hetero}" if hetero else "")
        )
    systems = _ring_systems([set(ring) for ring in rings])
    aromatic = rdMolDescriptors.CalcNumAromaticRings(mol)
    hetero_aromatic = rdMolDescriptors.CalcNumAromaticHeterocycles(mol)
    return (
        f"Rings: {len(rings)} in {_plural(systems, 'system')} ({', '.join(listed)}); "
        f"{aromatic} aromatic, {hetero_aromatic} heteroaromatic."
    )


def _properties(mol: Chem.Mol) -> str:
    mw = Descriptors.MolWt(mol)
    logp = Crippen.MolLogP(mol)
    tpsa = rdMolDescriptors.CalcTPSA(mol)
    hbd = rdMolDescriptors.CalcNumHBD(mol)
    hba = rdMolDescriptors.CalcNumHBA(mol)
    rotatable = rdMolDescriptors.CalcNumRotatableBonds(mol)
    size = _bin(mw, (160, 300, 500), ("very small", "small", "medium-sized", "large"))
    lipophilicity = _bin(
        logp,
        (0, 1, 3, 5),
        ("hydrophilic", "fairly hydrophilic", "moderately lipophilic", "lipophilic", "very lipophilic"),
    )
    polarity = _bin(tpsa, (20, 60, 90, 140), ("nonpolar", "low polarity", "moderately polar", "polar", "very polar"))
    flexibility = _bin(rotatable, (4, 8), ("rigid", "moderately flexible", "flexible"))
    violations = [
        rule
        for rule, broken in (
            ("MW > 500", mw > 500),
            ("logP > 5", logp > 5),
            ("HBD > 5", hbd > 5),
            ("HBA > 10", hba > 10),
        )
        if broken
    ]
    lipinski = "passes" if len(violations) <= 1 else "fails"
    lipinski += f", {_plural(len(violations), 'violation')}" + (f" ({', '.join(violations)})" if violations else "")
    veber = "passes" if rotatable <= 10 and tpsa <= 140 else "fails"
    return (
        f"MW {mw:.0f} ({size}), logP {logp:.1f} ({lipophilicity}), TPSA {tpsa:.0f} ({polarity}), "
        f"{_plural(hbd, 'H-bond donor')}, {_plural(hba, 'acceptor')}, {_plural(rotatable, 'rotatable bond')} "
        f"({flexibility}), Fsp3 {rdMolDescriptors.CalcFractionCSP3(mol):.2f}.\n"
        f"Lipinski rule of five: {lipinski}. Veber rule: {veber}."
    )


def describe_smiles(smiles: str) -> str:
    """The full description text for one SMILES; raises ProviderError when RDKit cannot parse it."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise ProviderError("invalid_smiles", f"RDKit could not read a molecule from SMILES {smiles!r}")
    return "\n".join((DISCLAIMER, _composition(mol), _groups(mol), _rings(mol), _properties(mol)))


class OfflineDescriber:
    """Describe provider that needs no network: same SMILES in, same text out, at no cost."""

    name = "offline"

    def __init__(self, model: str = "rdkit-descriptors") -> None:
        if model != "rdkit-descriptors":
            raise ValueError(f"unknown offline describe model {model!r}; supported: 'rdkit-descriptors'")
        self.model = model

    async def complete(self, request: DescribeRequest) -> Completion:
        """Ignores the prompt and picture: the description depends only on the molecule."""
        return Completion(text=describe_smiles(request.smiles), finish_reason="stop")
