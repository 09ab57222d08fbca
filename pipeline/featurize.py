"""Molecules as tensors: atom and bond one-hots, each vocabulary ending in an explicit 'other' bucket.

One featuriser serves the teacher (atoms + bonds) and the paper's student (atoms only), so
both see exactly the same atom description.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdqueries
from torch import Tensor
from torch_geometric.data import Data

from pipeline.chem import molecules_from_keys

_ELEMENTS = (1, 5, 6, 7, 8, 9, 11, 14, 15, 16, 17, 19, 20, 26, 29, 30, 33, 34, 35, 53)
_HYBRIDISATIONS = (
    Chem.HybridizationType.S,
    Chem.HybridizationType.SP,
    Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3,
    Chem.HybridizationType.SP3D,
    Chem.HybridizationType.SP3D2,
)
_CHIRALITY = (
    Chem.ChiralType.CHI_UNSPECIFIED,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW,
)
_BOND_TYPES = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC)
_BOND_STEREO = (
    Chem.BondStereo.STEREONONE,
    Chem.BondStereo.STEREOANY,
    Chem.BondStereo.STEREOZ,
    Chem.BondStereo.STEREOE,
    Chem.BondStereo.STEREOCIS,
    Chem.BondStereo.STEREOTRANS,
)

# (name, vocabulary) for each one-hot block; the block's last slot is "other".
ATOM_VOCABULARIES: tuple[tuple[str, tuple], ...] = (
    ("element", _ELEMENTS),
    ("degree", (0, 1, 2, 3, 4, 5)),
    ("formal_charge", (-2, -1, 0, 1, 2)),
    ("total_hs", (0, 1, 2, 3, 4)),
    ("hybridisation", _HYBRIDISATIONS),
    ("chirality", _CHIRALITY),
    ("aromatic", (False, True)),
    ("in_ring", (False, True)),
)
BOND_VOCABULARIES: tuple[tuple[str, tuple], ...] = (
    ("bond_type", _BOND_TYPES),
    ("conjugated", (False, True)),
    ("in_ring", (False, True)),
    ("stereo", _BOND_STEREO),
)


def _offsets(vocabularies: tuple[tuple[str, tuple], ...]) -> tuple[list[dict], int]:
    lookups, offset = [], 0
    for _, vocabulary in vocabularies:
        lookups.append(
            {value: offset + index for index, value in enumerate(vocabulary)} | {"other": offset + len(vocabulary)}
        )
        offset += len(vocabulary) + 1
    return lookups, offset


_ATOM_LOOKUPS, ATOM_DIM = _offsets(ATOM_VOCABULARIES)
_BOND_LOOKUPS, BOND_DIM = _offsets(BOND_VOCABULARIES)


def _slot(lookup: dict, value) -> int:
    return lookup.get(value, lookup["other"])


_CHIRAL_SLOT = [name for name, _ in ATOM_VOCABULARIES].index("chirality")
_HAS_CHIRAL_TAG = rdqueries.HasChiralTagQueryAtom()


def _canonical_chiral_tags(mol: Chem.Mol, atoms: list[int]) -> list[Chem.ChiralType]:
    """The chiral tags of `atoms` as they read in the molecule's canonical SMILES.

    CW/CCW are relative to the order of an atom's neighbours, so the same molecule typed in
    another atom order would carry the opposite tag. Training reads molecules from prepare's
    canonical SMILES; reading the tags back from that string (unsanitised: the tags are set at
    parse time) gives any spelling the training tags, at a fraction of a full re-parse.
    """
    canonical = Chem.MolFromSmiles(Chem.MolToSmiles(mol), sanitize=False)
    positions = json.loads(mol.GetProp("_smilesAtomOutputOrder"))  # canonical position -> atom, from MolToSmiles
    return [canonical.GetAtomWithIdx(positions.index(atom)).GetChiralTag() for atom in atoms]


def atom_keys(mol: Chem.Mol) -> list[tuple]:
    """Per atom, the properties the one-hots encode, in ATOM_VOCABULARIES order, whatever the atom order.

    Speed matters here (`gallon predict` spends most of its time in this function): RDKit finds
    the few atoms with a chiral tag in one C++ pass, so the other atoms never pay for reading
    a tag (an enum, the costliest property to fetch through Boost.Python); and
    `GetAtomWithIdx` is several times faster than iterating `GetAtoms()`.
    """
    keys = [
        (
            atom.GetAtomicNum(),
            atom.GetDegree(),
            atom.GetFormalCharge(),
            atom.GetTotalNumHs(),
            atom.GetHybridization(),
            Chem.ChiralType.CHI_UNSPECIFIED,
            atom.GetIsAromatic(),
            atom.IsInRing(),
        )
        for atom in map(mol.GetAtomWithIdx, range(mol.GetNumAtoms()))
    ]
    chiral = [atom.GetIdx() for atom in mol.GetAtomsMatchingQuery(_HAS_CHIRAL_TAG)]
    if chiral:
        for index, tag in zip(chiral, _canonical_chiral_tags(mol, chiral), strict=True):
            keys[index] = (*keys[index][:_CHIRAL_SLOT], tag, *keys[index][_CHIRAL_SLOT + 1 :])
    return keys


def atom_features(mol: Chem.Mol) -> np.ndarray:
    """(n_atoms, ATOM_DIM) float32 one-hot block matrix."""
    hot = np.zeros((mol.GetNumAtoms(), ATOM_DIM), dtype=np.float32)
    for index, key in enumerate(atom_keys(mol)):
        hot[index, [_slot(lookup, value) for lookup, value in zip(_ATOM_LOOKUPS, key, strict=True)]] = 1
    return hot


def bond_graph(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every bond: edge_index (2, 2*n_bonds) and edge_attr (2*n_bonds, BOND_DIM)."""
    n_bonds = mol.GetNumBonds()
    edge_index = np.zeros((2, 2 * n_bonds), dtype=np.int64)
    edge_attr = np.zeros((2 * n_bonds, BOND_DIM), dtype=np.float32)
    for bond in mol.GetBonds():
        i, begin, end = bond.GetIdx(), bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        edge_index[:, 2 * i] = (begin, end)
        edge_index[:, 2 * i + 1] = (end, begin)
        values = (bond.GetBondType(), bond.GetIsConjugated(), bond.IsInRing(), bond.GetStereo())
        slots = [_slot(lookup, value) for lookup, value in zip(_BOND_LOOKUPS, values, strict=True)]
        edge_attr[2 * i, slots] = 1.0
        edge_attr[2 * i + 1, slots] = 1.0
    return edge_index, edge_attr


def mol_to_graph(mol: Chem.Mol, y: np.ndarray | None = None) -> Data:
    """A PyG graph; a molecule without bonds gets an empty (2, 0) edge index."""
    edge_index, edge_attr = bond_graph(mol)
    data = Data(
        x=torch.from_numpy(atom_features(mol)),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edge_attr),
    )
    if y is not None:
        data.y = torch.as_tensor(y, dtype=torch.float32).view(1, -1)
    return data


def graphs_from_smiles(smiles: list[str], labels: np.ndarray | None = None) -> list[Data]:
    """Graphs for canonical SMILES that prepare already validated."""
    return [
        mol_to_graph(mol, None if labels is None else labels[index])
        for index, mol in enumerate(molecules_from_keys(smiles))
    ]


@dataclass
class GraphBatch:
    """Many molecules as one disjoint graph, with the two sparse operators the models need precomputed.

    `gcn_adjacency` is D^-1/2 (A + I) D^-1/2 and `mean_pool` averages atoms per molecule; as
    CSR matrices they turn message passing and pooling into single sparse matmuls, far faster
    on CPU than generic scatter-based propagation.
    """

    x: Tensor
    edge_index: Tensor
    edge_attr: Tensor
    batch: Tensor
    num_graphs: int
    gcn_adjacency: Tensor
    mean_pool: Tensor
    inverse_sizes: Tensor


def _csr(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    order = torch.argsort(rows * shape[1] + cols)
    rows, cols, values = rows[order], cols[order], values[order]
    crow = torch.zeros(shape[0] + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta": the two ops used here are stable
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def collate(graphs: list[Data]) -> GraphBatch:
    """Concatenate graphs; molecules without bonds simply contribute no edges."""
    sizes = torch.tensor([graph.num_nodes for graph in graphs], dtype=torch.long)
    offsets = torch.cumsum(sizes, 0) - sizes
    x = torch.cat([graph.x for graph in graphs])
    edge_index = torch.cat([graph.edge_index + offset for graph, offset in zip(graphs, offsets, strict=True)], 1)
    edge_attr = torch.cat([graph.edge_attr for graph in graphs])
    n_atoms, n_graphs = x.shape[0], len(graphs)
    batch = torch.repeat_interleave(torch.arange(n_graphs), sizes)

    loops = torch.arange(n_atoms)
    rows, cols = torch.cat([edge_index[1], loops]), torch.cat([edge_index[0], loops])
    degree = torch.bincount(rows, minlength=n_atoms).float()
    weights = degree[rows].rsqrt() * degree[cols].rsqrt()
    gcn_adjacency = _csr(rows, cols, weights, (n_atoms, n_atoms))
    inverse_sizes = 1.0 / sizes.clamp(min=1).float()
    mean_pool = _csr(batch, loops, inverse_sizes[batch], (n_graphs, n_atoms))
    return GraphBatch(x, edge_index, edge_attr, batch, n_graphs, gcn_adjacency, mean_pool, inverse_sizes)
