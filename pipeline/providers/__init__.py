"""Choose a provider from params; heavy client libraries are imported only when chosen."""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.params import DescribeParams, EmbedParams
from pipeline.providers.base import DescribeProvider, EmbedProvider


def provider_name(provider: str, base_url: str | None) -> str:
    """The provider part of cache keys: `openai`, or `openai@host:port` for any other endpoint.

    Two servers that serve a model under the same name (OpenAI and a local vLLM, say) give
    different answers, so their answers must not share keys; the path and scheme do not matter.
    """
    if provider != "openai" or base_url is None:
        return provider
    netloc = urlsplit(base_url).netloc.lower()
    return "openai" if netloc == "api.openai.com" else f"openai@{netloc}"


def make_describer(settings: DescribeParams) -> DescribeProvider:
    if settings.provider == "offline":
        from pipeline.providers.offline import OfflineDescriber

        return OfflineDescriber(settings.model)
    from pipeline.providers.openai_provider import OpenAIDescriber

    return OpenAIDescriber(settings)


def make_embedder(settings: EmbedParams) -> EmbedProvider:
    if settings.provider == "local":
        from pipeline.providers.local_embedder import LocalEmbedder

        return LocalEmbedder(settings.model)
    from pipeline.providers.openai_provider import OpenAIEmbedder

    return OpenAIEmbedder(settings)
