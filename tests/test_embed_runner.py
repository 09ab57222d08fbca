"""embed_texts: aligned float32 rows, only uncached distinct texts sent, shards reused across runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cache import EMBED_SCHEMA, ShardStore
from pipeline.embed import embed_cache_key, embed_texts
from pipeline.params import EmbedParams
from pipeline.providers.openai_provider import OpenAIEmbedder
from tests.llm_fixtures import TEST_KEY_ENV
from tests.llm_server import Fault, LLMServer, embedding_for


def embedder(server: LLMServer, model: str = "e", max_retries: int = 0) -> OpenAIEmbedder:
    settings = EmbedParams(
        provider="openai", model=model, base_url=server.url, api_key_env=TEST_KEY_ENV, max_retries=max_retries
    )
    return OpenAIEmbedder(settings)


@pytest.fixture
def store(tmp_path: Path) -> ShardStore:
    return ShardStore(tmp_path / "cache" / "embed")  # no schema, as the stage opens it: the runner sets it


def test_key_depends_on_provider_model_and_text_only() -> None:
    key = embed_cache_key("openai", "e", "text")
    assert key == embed_cache_key("openai", "e", "text") and len(key) == 64
    assert (
        len(
            {
                key,
                embed_cache_key("local", "e", "text"),
                embed_cache_key("openai", "f", "text"),
                embed_cache_key("openai", "e", "text!"),
            }
        )
        == 4
    )


@pytest.mark.usefixtures("api_key")
def test_only_missing_distinct_texts_are_embedded(llm_server: LLMServer, store: ShardStore) -> None:
    texts = [f"text {i}" for i in range(10)] + ["text 0"]
    first = embed_texts(texts, embedder(llm_server), store, batch_size=4)
    assert llm_server.embed_hits == 3  # 10 distinct texts in batches of 4
    assert first.dtype == np.float32 and first.shape == (11, llm_server.embed_dim)
    assert np.allclose(first[3], embedding_for("text 3", "e", llm_server.embed_dim))
    assert np.array_equal(first[0], first[10])
    again = embed_texts(texts, embedder(llm_server), store, batch_size=4)
    assert llm_server.embed_hits == 3 and np.array_equal(first, again)
    more = embed_texts(["text 5", "new a", "new b"], embedder(llm_server), store, batch_size=4)
    assert llm_server.embed_hits == 4 and llm_server.requests[-1]["input"] == ["new a", "new b"]
    assert np.array_equal(more[0], first[5])
    assert all(pq.read_schema(path).equals(EMBED_SCHEMA) for path in store.shard_paths())


@pytest.mark.usefixtures("api_key")
def test_model_swap_and_back_reuses_the_first_model(llm_server: LLMServer, store: ShardStore) -> None:
    texts = ["a", "b"]
    embed_texts(texts, embedder(llm_server, "e"), store, batch_size=8)
    embed_texts(texts, embedder(llm_server, "f"), store, batch_size=8)
    embed_texts(texts, embedder(llm_server, "e"), store, batch_size=8)
    assert llm_server.embed_hits == 2
    assert store.stats()["rows_by_provider_model"] == {
        f"openai@{llm_server.url.split('/')[2]}/e": 2,
        f"openai@{llm_server.url.split('/')[2]}/f": 2,
    }


@pytest.mark.usefixtures("api_key")
def test_finished_batches_survive_a_failing_batch(llm_server: LLMServer, store: ShardStore) -> None:
    llm_server.script(Fault("ok"), Fault("401"))
    with pytest.raises(Exception, match="rejected"):
        embed_texts(["a", "b", "c"], embedder(llm_server), store, batch_size=2)
    assert len(store.keys()) == 2
    embed_texts(["a", "b", "c"], embedder(llm_server), store, batch_size=2)
    assert llm_server.embed_hits == 3 and llm_server.requests[-1]["input"] == ["c"]


@pytest.mark.usefixtures("api_key")
def test_sdk_retries_transient_embedding_errors(llm_server: LLMServer, store: ShardStore) -> None:
    llm_server.script(Fault("500", retry_after=0))
    matrix = embed_texts(["a"], embedder(llm_server, max_retries=2), store, batch_size=8)
    assert matrix.shape == (1, llm_server.embed_dim) and llm_server.embed_hits == 2


class CountingEmbedder:
    name, model = "fake", "fixed"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        return np.array([[len(text), 1.0] for text in texts], dtype=np.float64)


def test_any_embed_provider_works_and_empty_input_is_empty(store: ShardStore) -> None:
    provider = CountingEmbedder()
    matrix = embed_texts(["aa", "b"], provider, store, batch_size=1)
    assert matrix.dtype == np.float32 and matrix.tolist() == [[2.0, 1.0], [1.0, 1.0]]
    assert provider.calls == [["aa"], ["b"]]
    assert embed_texts([], provider, store, batch_size=1).shape[0] == 0
