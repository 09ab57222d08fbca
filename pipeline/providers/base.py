"""The small interface every provider implements; providers know nothing of torch or DVC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.errors import GallonError


@dataclass(frozen=True)
class DescribeRequest:
    """One question about one molecule, exactly as it will be sent."""

    molecule_key: str
    smiles: str
    prompt: str
    image_png: bytes | None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ProviderError(GallonError):
    """A request that failed; `kind` is the category counted in the stage summary.

    `retry_after` is the server's Retry-After in seconds, honoured by the runner before retrying.
    """

    def __init__(self, kind: str, message: str, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


class FatalProviderError(ProviderError):
    """Stop everything now (bad key, exhausted quota): more requests cannot succeed."""


class DescribeProvider(Protocol):
    name: str
    model: str

    async def complete(self, request: DescribeRequest) -> Completion: ...


class EmbedProvider(Protocol):
    name: str
    model: str

    def embed(self, texts: list[str]) -> np.ndarray: ...
