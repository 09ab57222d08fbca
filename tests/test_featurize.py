import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from torch_geometric.nn import GCNConv

from pipeline.featurize import (
    ATOM_DIM,
    ATOM_VOCABULARIES,
    BOND_DIM,
    atom_features,
    atom_keys,
    collate,
    graphs_from_smiles,
)
from pipeline.models import GCNLayer, mean_pool
from tests.conftest import SMALL_CSV

UNSPECIFIED = Chem.ChiralType.CHI_UNSPECIFIED
MIXED = ["CC(=O)Oc1ccccc1C(=O)O", "C", "Br", "[Na+].[Cl-]", "c1ccncc1", "CN1CCC[C@H]1c1cccnc1"]


def test_every_atom_has_exactly_one_slot_per_vocabulary():
    features = atom_features(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
    assert features.shape == (13, ATOM_DIM)
    assert (features.sum(axis=1) == len(ATOM_VOCABULARIES)).all()


def test_unusual_atoms_fall_into_the_other_buckets():
    # uranium (element), hexavalent sulfur-like degree on a metal complex, charge +3
    mol = Chem.MolFromSmiles("[U+3]")
    other_slots = {"element": 20, "formal_charge": 5}
    features = atom_features(mol)
    offset = 0
    for name, vocabulary in ATOM_VOCABULARIES:
        if name in other_slots:
            assert features[0, offset + len(vocabulary)] == 1.0, name
        offset += len(vocabulary) + 1
    cobalt = Chem.MolFromSmiles("[Co+3]([NH3])([NH3])([NH3])([NH3])([NH3])[NH3]")
    assert atom_features(cobalt).shape == (7, ATOM_DIM)


def test_molecules_without_bonds_have_an_empty_edge_index_of_the_right_shape():
    for smiles in ["C", "Br", "[Na+].[Cl-]"]:
        graph = graphs_from_smiles([smiles])[0]
        assert graph.edge_index.shape == (2, 0) and graph.edge_attr.shape == (0, BOND_DIM)


def test_batches_of_only_bondless_molecules_collate_and_pool():
    batch = collate(graphs_from_smiles(["C", "Br", "[Na+].[Cl-]"]))
    assert batch.num_graphs == 3 and batch.edge_index.shape == (2, 0)
    pooled = mean_pool(batch.x, batch)
    assert torch.allclose(pooled[2], batch.x[2:4].mean(0))


def test_gcn_layer_matches_pyg_gcnconv():
    batch = collate(graphs_from_smiles(MIXED))
    ours = GCNLayer(ATOM_DIM, 8)
    reference = GCNConv(ATOM_DIM, 8)
    with torch.no_grad():
        reference.lin.weight.copy_(ours.linear.weight)
        reference.bias.copy_(torch.linspace(-1, 1, 8))
        ours.bias.copy_(torch.linspace(-1, 1, 8))
    expected = reference(batch.x, batch.edge_index)
    assert torch.allclose(ours(batch.x, batch), expected, atol=1e-5)


def test_gcn_gradient_matches_autograd_through_a_dense_matrix():
    batch = collate(graphs_from_smiles(MIXED))
    layer = GCNLayer(ATOM_DIM, 4)
    h = batch.x.clone().requires_grad_(True)
    layer(h, batch).pow(2).sum().backward()
    dense = batch.gcn_adjacency.to_dense()
    h2 = batch.x.clone().requires_grad_(True)
    (dense @ layer.linear(h2) + layer.bias).pow(2).sum().backward()
    assert torch.allclose(h.grad, h2.grad, atol=1e-5)


def test_bond_features_mark_aromatic_bonds_in_both_directions():
    graph = graphs_from_smiles(["c1ccccc1"])[0]
    assert graph.edge_index.shape == (2, 12)
    assert np.allclose(graph.edge_attr[0].numpy(), graph.edge_attr[1].numpy())


def _rows(mol: Chem.Mol) -> list[bytes]:
    return sorted(map(bytes, atom_features(mol).astype(np.uint8)))


def _raw_tags(mol: Chem.Mol) -> list[str]:
    return sorted(str(atom.GetChiralTag()) for atom in mol.GetAtoms() if atom.GetChiralTag() != UNSPECIFIED)


def test_atom_features_of_a_stereo_molecule_do_not_depend_on_how_it_is_written():
    """CW/CCW flip with the order of an atom's neighbours; the features must not."""
    stereo = [smiles for smiles in pd.read_csv(SMALL_CSV)["smiles"] if "@" in smiles]
    flipped = 0
    for smiles in stereo:
        written = Chem.MolFromSmiles(smiles)
        for seed in range(5):
            order = np.random.default_rng(seed).permutation(written.GetNumAtoms()).tolist()
            spelling = Chem.MolFromSmiles(Chem.MolToSmiles(Chem.RenumberAtoms(written, order), canonical=False))
            assert _rows(spelling) == _rows(written), smiles
            flipped += _raw_tags(spelling) != _raw_tags(written)
    assert len(stereo) >= 5 and flipped > 0  # the raw tags did change: the canonical reading was exercised


def test_atom_keys_read_what_a_plain_per_atom_loop_reads_on_canonical_molecules():
    """The fast path (chiral atoms found in one RDKit pass) against the obvious reading, stereo molecules included.

    Read from its canonical SMILES, as training reads it, a molecule's own tags are the canonical ones.
    """
    smiles = [*pd.read_csv(SMALL_CSV)["smiles"], *MIXED, "F[C@H](Cl)Br", "C[C@@H]1CC[C@H](C)CC1"]
    chiral = 0
    for mol in (Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(smi))) for smi in smiles):
        expected = [
            (
                atom.GetAtomicNum(),
                atom.GetDegree(),
                atom.GetFormalCharge(),
                atom.GetTotalNumHs(),
                atom.GetHybridization(),
                atom.GetChiralTag(),
                atom.GetIsAromatic(),
                atom.IsInRing(),
            )
            for atom in mol.GetAtoms()
        ]
        assert atom_keys(mol) == expected, Chem.MolToSmiles(mol)
        chiral += any(key[5] != UNSPECIFIED for key in expected)
    assert chiral >= 5
