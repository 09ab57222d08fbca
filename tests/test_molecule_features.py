import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from pipeline.featurize import ATOM_DIM, atom_features
from pipeline.molecule_features import (
    CLIP,
    DESCRIPTOR_NAMES,
    AtomTable,
    FeatureError,
    FeatureScaler,
    MoleculeFeaturizer,
)
from pipeline.params import StudentParams
from pipeline.student import student_inputs
from tests.conftest import SMALL_CSV


@pytest.fixture(scope="module")
def mols():
    return [Chem.MolFromSmiles(smiles) for smiles in pd.read_csv(SMALL_CSV)["smiles"]]


def test_atom_table_reproduces_the_reference_one_hots(mols):
    table = AtomTable()
    for mol in mols:
        codes = table.codes(mol)  # may grow the table: look it up afterwards
        assert np.array_equal(table.table[codes], atom_features(mol))
    counts = table.type_counts(mols)
    assert counts.shape == (len(mols), len(table.table)) and counts.sum(1).tolist() == [m.GetNumAtoms() for m in mols]


def test_pooled_atoms_are_mean_then_sum_of_one_hots(mols):
    features = MoleculeFeaturizer("pooled_atoms")(mols[:5])
    for row, mol in zip(features, mols[:5], strict=True):
        hot = atom_features(mol)
        assert np.allclose(row, np.concatenate([hot.mean(0), hot.sum(0)]))


def test_blocks_combine_in_order_with_the_declared_width(mols):
    featurizer = MoleculeFeaturizer("fingerprint+descriptors", radius=1, bits=64)
    features = featurizer(mols)
    assert features.shape == (len(mols), 64 + len(DESCRIPTOR_NAMES)) == (len(mols), featurizer.dim)
    assert np.isfinite(features).all()
    benzene = features[[Chem.MolToSmiles(mol) for mol in mols].index("c1ccccc1"), :64]
    assert benzene.sum() == 12  # 6 atoms x (radius 0 + radius 1) environments
    assert featurizer.settings()["descriptor_names"] == list(DESCRIPTOR_NAMES)
    with pytest.raises(FeatureError, match="graph"):
        MoleculeFeaturizer("fingerprint+graph")


def test_descriptors_of_an_odd_molecule_are_finite():
    odd = [Chem.MolFromSmiles(smiles) for smiles in ("[Na+].[Cl-]", "[Xe]", "C", "[2H]C([2H])([2H])[2H]")]
    assert np.isfinite(MoleculeFeaturizer("descriptors")(odd)).all()


def test_scaler_standardises_on_train_and_keeps_constant_columns_at_zero():
    train = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]])
    scaler = FeatureScaler.fit(train)
    assert np.allclose(scaler.transform(train), [[-1, 0, -1], [1, 0, 1]])
    new = scaler.transform(np.array([[2.0, 9.0, 1e9]]))
    assert new[0, 1] == 0 and new[0, 2] == CLIP and new.dtype == np.float32
    assert np.array_equal(FeatureScaler.from_dict(scaler.to_dict()).transform(train), scaler.transform(train))


def test_student_vectors_are_scaled_with_train_statistics_only():
    smiles = pd.read_csv(SMALL_CSV)["smiles"].tolist()
    train = np.arange(40)
    built = student_inputs(smiles, train, StudentParams(inputs="fingerprint", fingerprint_bits=128))
    vectors = built.inputs.vectors.numpy()
    assert vectors.shape == (60, 128) and built.features["dim"] == 128
    varying = vectors[train].std(0) > 0
    assert np.allclose(vectors[train][:, varying].mean(0), 0, atol=1e-5)
    assert not np.allclose(vectors[40:][:, varying].mean(0), 0, atol=1e-3)
    assert student_inputs(smiles, train, StudentParams()).features == {"format": 1, "inputs": "atoms", "dim": ATOM_DIM}
