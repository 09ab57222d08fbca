"""OpenAIDescriber/OpenAIEmbedder: request shape and the mapping of every failure to a kind."""

from __future__ import annotations

import asyncio
import base64

import pytest

from pipeline.params import DescribeParams, EmbedParams
from pipeline.providers import make_describer, make_embedder, provider_name
from pipeline.providers.base import DescribeRequest, FatalProviderError, ProviderError
from pipeline.providers.openai_provider import (
    MissingApiKeyError,
    OpenAIDescriber,
    OpenAIEmbedder,
    parse_retry_after,
)
from tests.llm_fixtures import TEST_KEY_ENV
from tests.llm_server import Fault, LLMServer, answer_for

REQUEST = DescribeRequest("mol", "CCO", "Describe ethanol.", b"\x89PNG fake")


def describer(server: LLMServer, **changes: object) -> OpenAIDescriber:
    base = {"provider": "openai", "model": "m", "base_url": server.url, "api_key_env": TEST_KEY_ENV, "timeout_s": 0.5}
    return OpenAIDescriber(DescribeParams(**(base | changes)))


def ask(provider: OpenAIDescriber, request: DescribeRequest = REQUEST):
    async def once():
        try:
            return await provider.complete(request)
        finally:
            await provider.aclose()

    return asyncio.run(once())


def test_missing_key_is_a_clear_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, llm_server: LLMServer
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(MissingApiKeyError, match="NO_SUCH_KEY_VAR"):
        make_describer(DescribeParams(provider="openai", model="m", api_key_env="NO_SUCH_KEY_VAR"))
    with pytest.raises(MissingApiKeyError, match="NO_SUCH_KEY_VAR"):
        make_embedder(EmbedParams(provider="openai", model="e", api_key_env="NO_SUCH_KEY_VAR"))
    assert llm_server.chat_hits == 0


def test_factories_pick_the_configured_provider(api_key: str) -> None:
    assert type(make_describer(DescribeParams(provider="offline"))).__name__ == "OfflineDescriber"
    openai_settings = DescribeParams(provider="openai", model="m", api_key_env=TEST_KEY_ENV)
    assert isinstance(make_describer(openai_settings), OpenAIDescriber)
    assert isinstance(
        make_embedder(EmbedParams(provider="openai", model="e", api_key_env=TEST_KEY_ENV)), OpenAIEmbedder
    )


def test_provider_name_separates_endpoints_but_not_paths() -> None:
    assert provider_name("offline", None) == "offline"
    assert provider_name("openai", None) == provider_name("openai", "https://api.openai.com/v1") == "openai"
    assert provider_name("openai", "http://localhost:8000/v1") == provider_name("openai", "http://LOCALHOST:8000")
    assert provider_name("openai", "http://localhost:8000/v1") == "openai@localhost:8000"


@pytest.mark.usefixtures("api_key")
def test_request_carries_text_and_png_data_url(llm_server: LLMServer) -> None:
    completion = ask(describer(llm_server, image_detail="high", temperature=0.3, max_tokens=123))
    assert completion.text == answer_for(REQUEST.prompt, "m") and completion.finish_reason == "stop"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    body = llm_server.requests[0]
    text, image = body["messages"][0]["content"]
    assert text == {"type": "text", "text": REQUEST.prompt}
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(REQUEST.image_png).decode()
    assert image["image_url"]["detail"] == "high"
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("m", 0.3, 123)


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize(
    "fault, kind, is_retryable",
    [
        ("429", "rate_limited", True),
        ("500", "server_error", True),
        ("stall", "timeout", True),
        ("drop", "connection", True),
        ("error_body", "error_body", True),
        ("no_choices", "no_choices", True),
        ("malformed", "malformed_response", True),
        ("empty", "empty_content", False),
        ("length", "length", False),
        ("refusal", "refusal", False),
    ],
)
def test_each_fault_maps_to_a_kind_with_one_http_call(
    llm_server: LLMServer, fault: str, kind: str, is_retryable: bool
) -> None:
    llm_server.stall_s = 1.0
    llm_server.script(Fault(fault))
    with pytest.raises(ProviderError) as error:
        ask(describer(llm_server))
    assert (error.value.kind, error.value.retryable) == (kind, is_retryable)
    assert not isinstance(error.value, FatalProviderError)
    assert llm_server.chat_hits == 1, "the SDK must not retry on its own"


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("fault, kind", [("401", "auth"), ("quota", "insufficient_quota")])
def test_auth_and_quota_are_fatal(llm_server: LLMServer, fault: str, kind: str) -> None:
    llm_server.script(Fault(fault))
    with pytest.raises(FatalProviderError) as error:
        ask(describer(llm_server))
    assert error.value.kind == kind and llm_server.chat_hits == 1


@pytest.mark.usefixtures("api_key")
def test_retry_after_header_is_carried(llm_server: LLMServer) -> None:
    llm_server.script(Fault("429", retry_after=7))
    with pytest.raises(ProviderError) as error:
        ask(describer(llm_server))
    assert error.value.retry_after == 7.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


@pytest.mark.usefixtures("api_key")
def test_embedder_returns_float32_rows_in_order(llm_server: LLMServer) -> None:
    embedder = OpenAIEmbedder(
        EmbedParams(provider="openai", model="e", base_url=llm_server.url, api_key_env=TEST_KEY_ENV)
    )
    matrix = embedder.embed(["a", "b", "c"])
    assert matrix.shape == (3, llm_server.embed_dim) and str(matrix.dtype) == "float32"
    assert llm_server.embed_hits == 1 and llm_server.requests[0]["input"] == ["a", "b", "c"]


@pytest.mark.usefixtures("api_key")
def test_embedder_auth_error_is_fatal(llm_server: LLMServer) -> None:
    embedder = OpenAIEmbedder(
        EmbedParams(provider="openai", model="e", base_url=llm_server.url, api_key_env=TEST_KEY_ENV)
    )
    llm_server.script(Fault("401"))
    with pytest.raises(FatalProviderError, match=TEST_KEY_ENV):
        embedder.embed(["a"])
