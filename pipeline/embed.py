"""Embed texts through the shard cache: each distinct text is embedded once per provider/model."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.cache import EMBED_SCHEMA, ShardStore, utc_now
from pipeline.providers.base import EmbedProvider


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def embed_cache_key(provider: str, model: str, text: str) -> str:
    """sha256 of provider, model and the text's hash: nothing else decides an embedding."""
    payload = json.dumps(["embed/1", provider, model, text_hash(text)], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _as_matrix(vectors: list, dim: int | None) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
        raise ValueError(
            f"embeddings of inconsistent sizes (expected {dim} columns, got shape {matrix.shape}); "
            "the cache may mix models under one name: check `gallon cache stats`"
        )
    return matrix


def _cached_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """list<float32> column -> 2-d float32 array without a Python float per value (41k x 384 is fast)."""
    array = column.combine_chunks()
    lengths = set(pc.list_value_length(array).to_pylist())
    if len(lengths) != 1:
        raise ValueError(
            f"cached embeddings of different sizes {sorted(lengths)}; "
            "the cache may mix models under one name: check `gallon cache stats`"
        )
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), lengths.pop())


def embed_texts(
    texts: list[str],
    provider: EmbedProvider,
    store: ShardStore,
    batch_size: int,
    flush_every: int = 1000,
    flush_seconds: float = 10.0,
) -> np.ndarray:
    """float32 matrix with one row per text (in order); only texts missing from the cache are embedded."""
    keys = [embed_cache_key(provider.name, provider.model, text) for text in texts]
    found = store.lookup_table(keys, ["embedding"])
    vectors: dict[str, np.ndarray] = {}
    if found.num_rows:
        vectors = dict(zip(found.column("key").to_pylist(), _cached_matrix(found.column("embedding")), strict=True))
    missing = list(dict.fromkeys(key for key in keys if key not in vectors))
    text_of = dict(zip(keys, texts, strict=True))
    dim = next(iter(vectors.values())).shape[0] if vectors else None
    with (
        store.writer(flush_every, flush_seconds, EMBED_SCHEMA) as writer,
        tqdm(
            total=len(missing),
            desc=f"embed {provider.name}/{provider.model}",
            unit="text",
            file=sys.stderr,
            mininterval=0.5,
            disable=not missing,
        ) as progress,
    ):
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            matrix = _as_matrix(provider.embed([text_of[key] for key in batch]), dim)
            if matrix.shape[0] != len(batch):
                raise ValueError(f"provider returned {matrix.shape[0]} embeddings for {len(batch)} texts")
            dim = matrix.shape[1]
            for key, vector in zip(batch, matrix, strict=True):
                vectors[key] = vector
                writer.add(
                    {
                        "key": key,
                        "provider": provider.name,
                        "model": provider.model,
                        "text_hash": text_hash(text_of[key]),
                        "embedding": vector.tolist(),
                        "created_at": utc_now(),
                    }
                )
            progress.update(len(batch))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([vectors[key] for key in keys]).astype(np.float32, copy=False)
