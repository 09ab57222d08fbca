import numpy as np
import pandas as pd
import pytest

from pipeline.splits import SplitError, scaffold_of, split_molecules
from tests.conftest import SMALL_CSV

pytestmark = pytest.mark.filterwarnings("ignore:.*ring-free")


def _smiles():
    return pd.read_csv(SMALL_CSV)["smiles"].tolist()


def test_scaffold_split_is_deterministic_and_keeps_scaffolds_together():
    smiles = _smiles()
    first = split_molecules(smiles, "scaffold", 0.8, 0.1, seed=0)
    assert (first == split_molecules(smiles, "scaffold", 0.8, 0.1, seed=123)).all()
    by_scaffold = pd.DataFrame({"scaffold": [scaffold_of(smi) for smi in smiles], "part": first})
    assert (by_scaffold.groupby("scaffold")["part"].nunique() == 1).all()
    assert set(first) == {"train", "valid", "test"}
    assert (first == "train").sum() <= 0.8 * len(smiles)


def test_largest_scaffold_set_goes_to_train():
    smiles = _smiles()
    parts = split_molecules(smiles, "scaffold", 0.8, 0.1, seed=0)
    scaffolds = pd.Series([scaffold_of(smi) for smi in smiles])
    assert parts[scaffolds == scaffolds.value_counts().index[0]][0] == "train"


@pytest.mark.parametrize("method", ["random", "random_scaffold"])
def test_seeded_splits_repeat_and_vary_with_the_seed(method):
    smiles = _smiles()
    a, b = split_molecules(smiles, method, 0.8, 0.1, 1), split_molecules(smiles, method, 0.8, 0.1, 1)
    assert (a == b).all()
    assert any(not (a == split_molecules(smiles, method, 0.8, 0.1, seed)).all() for seed in range(2, 6))


def test_ring_free_molecules_share_the_empty_scaffold():
    assert scaffold_of("CCCCO") == "" == scaffold_of("CC(C)N")


def test_too_small_datasets_fail_clearly():
    with pytest.raises(SplitError, match="at least 3"):
        split_molecules(["CCO", "CCN"], "random", 0.8, 0.1, 0)
    with pytest.raises(SplitError, match="empty"):
        split_molecules(["c1ccccc1", "c1ccccc1C", "c1ccccc1O", "c1ccccc1N"], "scaffold", 0.8, 0.1, 0)


@pytest.mark.filterwarnings("default")
def test_empty_scaffold_majority_warns():
    smiles = ["CCO", "CCN", "CCC", "CCCC", "CCCCC", "c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CC1", "C1CCC1"]
    with pytest.warns(UserWarning, match="ring-free"):
        parts = split_molecules(smiles, "scaffold", 0.6, 0.2, 0)
    assert len(np.unique(parts[:5])) == 1
