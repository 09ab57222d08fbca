"""The local embedder: the real bundled model, unit vectors, deterministic, and long texts not truncated."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.providers.local_embedder import LocalEmbedder
from pipeline.providers.offline import describe_smiles


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="supported: all-MiniLM-L6-v2"):
        LocalEmbedder(model="text-embedding-3-small")


def test_rows_are_unit_norm_float32_of_dimension_384(embedder: LocalEmbedder) -> None:
    texts = [describe_smiles(s) for s in ("CC(=O)O", "[Na+].[Cl-]", "CN1CCC[C@H]1c1cccnc1")]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_text_gives_cosine_one_and_different_molecules_differ(embedder: LocalEmbedder) -> None:
    acid, amine = describe_smiles("CC(=O)O"), describe_smiles("CCN(CC)CC")
    vectors = embedder.embed([acid, amine, acid])
    assert float(vectors[0] @ vectors[2]) == pytest.approx(1.0, abs=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.999
    assert not np.allclose(vectors[0], vectors[1])


def test_repeated_calls_are_bit_identical(embedder: LocalEmbedder) -> None:
    texts = [describe_smiles("Cn1c(=O)c2c(ncn2C)n(C)c1=O"), "a short sentence"]
    assert np.array_equal(embedder.embed(texts), embedder.embed(texts))


def test_a_text_gets_the_same_bits_whatever_it_is_embedded_with(embedder: LocalEmbedder) -> None:
    """The cache embeds only the texts it lacks, so a text's companions change from run to run; its vector must not."""
    short = describe_smiles("CCO")
    alone = embedder.embed([short])[0]
    beside_longer = embedder.embed([describe_smiles("CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)NCCN1CCOCC1"), short])[1]
    assert np.array_equal(alone, beside_longer)


def test_meaning_is_captured(embedder: LocalEmbedder) -> None:
    pain, aspirin, train = embedder.embed(
        ["This drug relieves pain.", "Aspirin is a painkiller.", "The train left the station at noon."]
    )
    assert pain @ aspirin > pain @ train + 0.2


def test_text_beyond_the_model_window_still_counts(embedder: LocalEmbedder) -> None:
    shared = "The molecule has an aromatic ring and a carboxylic acid group. " * 40  # far beyond 256 word pieces
    first, second = embedder.embed([shared + "It is highly toxic to the liver.", shared + "It is sweet and harmless."])
    assert float(first @ second) < 0.999  # truncation at 256 word pieces would make them identical


def test_no_texts_gives_an_empty_matrix(embedder: LocalEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)
