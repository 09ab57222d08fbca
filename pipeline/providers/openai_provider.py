"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, LM Studio, Azure OpenAI, OpenRouter).

The describer turns every way a request can go wrong into a `ProviderError` with a `kind`
(counted in the stage summary) and says whether a retry can help; the runner in
`pipeline.describe` does the retrying, so the SDK's own retries are off. The API key is read
from the environment only and is scrubbed from every message this module produces.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import os
import time

import httpx2
import numpy as np
import openai

from pipeline.errors import GallonError
from pipeline.params import DescribeParams, EmbedParams
from pipeline.providers import provider_name
from pipeline.providers.base import Completion, DescribeRequest, FatalProviderError, ProviderError

IMAGE_MIME = "image/png"


class MissingApiKeyError(FatalProviderError, GallonError):
    """The env var that should hold the key is unset: stop before any work (the CLI prints it plainly)."""


def read_api_key(env_name: str) -> str:
    """The key from `env_name`; a clear error (naming the variable, never a value) when unset."""
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise MissingApiKeyError(
            "missing_api_key",
            f"provider 'openai' needs an API key in the environment variable {env_name}, which is not set. "
            f"Export it (e.g. `export {env_name}=...`; any non-empty value for local servers that need none), "
            "or change `api_key_env` in params.yaml. Keys are never read from params.yaml.",
        )
    return value


def retryable(kind: str, message: str, retry_after: float | None = None) -> ProviderError:
    """A ProviderError the runner retries; `retry_after` carries the server's Retry-After in seconds."""
    return ProviderError(kind, message, retryable=True, retry_after=retry_after)


def parse_retry_after(headers: object) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None when absent/bad."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    milliseconds = get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Scrubber:
    """Removes the key from any text before it is put in an exception or a log."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __call__(self, text: object, limit: int = 300) -> str:
        return str(text).replace(self._secret, "***")[:limit]


def _error_code(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or "")
    return ""


def status_error(error: openai.APIStatusError, scrub: _Scrubber, env_name: str) -> ProviderError:
    """Map an HTTP error status to fatal (auth, quota, unknown model), retryable or per-molecule."""
    status = error.status_code
    detail = scrub(error.message)
    if _error_code(error.body) == "insufficient_quota":
        return FatalProviderError("insufficient_quota", f"HTTP {status} insufficient_quota: the account has no credit")
    if status in (401, 403):
        return FatalProviderError("auth", f"HTTP {status}: the server rejected the key in {env_name} ({detail})")
    if status == 404:
        return FatalProviderError("not_found", f"HTTP 404: unknown model or wrong base_url ({detail})")
    if status == 429:
        return retryable("rate_limited", f"HTTP 429: {detail}", parse_retry_after(error.response.headers))
    if status in (408, 409) or status >= 500:
        return retryable("server_error", f"HTTP {status}: {detail}", parse_retry_after(error.response.headers))
    return ProviderError("bad_request", f"HTTP {status}: {detail}")


def parse_chat_completion(text: str, scrub: _Scrubber, headers: object = None) -> Completion:
    """A 200 response body -> Completion, or the ProviderError that says why it is not an answer."""
    try:
        data = json.loads(text)
    except ValueError:
        raise retryable("malformed_response", f"response is not JSON: {scrub(text, 120)!r}") from None
    if not isinstance(data, dict):
        raise retryable("malformed_response", "response JSON is not an object")
    if data.get("error"):
        message = f"HTTP 200 with an error body: {scrub(data['error'])}"
        raise retryable("error_body", message, parse_retry_after(headers))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise retryable("no_choices", "HTTP 200 without choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    finish_reason = str(choice.get("finish_reason") or "unknown")
    if message.get("refusal"):
        raise ProviderError("refusal", f"the model refused: {scrub(message['refusal'])}")
    if finish_reason == "length":
        raise ProviderError("length", "answer truncated at max_tokens (finish_reason 'length'); raise max_tokens")
    if finish_reason == "content_filter":
        raise ProviderError("content_filter", "answer withheld by the provider's content filter")
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise ProviderError("empty_content", "HTTP 200 with empty content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(
        text=content,
        finish_reason=finish_reason,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def user_content(request: DescribeRequest, detail: str) -> str | list[dict]:
    """Text alone, or text + the picture as a PNG data URL (the MIME type matches the bytes)."""
    if request.image_png is None:
        return request.prompt
    data_url = f"data:{IMAGE_MIME};base64,{base64.b64encode(request.image_png).decode('ascii')}"
    return [
        {"type": "text", "text": request.prompt},
        {"type": "image_url", "image_url": {"url": data_url, "detail": detail}},
    ]


class OpenAIDescriber:
    """Chat completions, one request per molecule; sends the picture iff the request carries one."""

    def __init__(self, settings: DescribeParams) -> None:
        self.name = provider_name("openai", settings.base_url)
        self.model = settings.model
        self._settings = settings
        self._key = read_api_key(settings.api_key_env)
        self._scrub = _Scrubber(self._key)
        self._clients: dict[int, openai.AsyncOpenAI] = {}

    def _client(self) -> openai.AsyncOpenAI:
        """One client per event loop: an async HTTP pool must not outlive the loop that opened it."""
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            self._clients = {}
            client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self._settings.base_url,
                timeout=self._settings.timeout_s,
                max_retries=0,
            )
            self._clients[loop_id] = client
        return client

    async def complete(self, request: DescribeRequest) -> Completion:
        settings = self._settings
        body = {
            "model": settings.model,
            "messages": [{"role": "user", "content": user_content(request, settings.image_detail)}],
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
        }
        try:
            # the SDK's low-level post: same auth, timeouts and error classes as `chat.completions.create`,
            # without its per-request parameter transform (~1 ms of CPU) and with the raw body, so that
            # error bodies, missing choices and malformed JSON are ours to classify
            response = await self._client().post("/chat/completions", body=body, cast_to=httpx2.Response)
        except openai.APIStatusError as error:
            raise status_error(error, self._scrub, settings.api_key_env) from None
        except openai.APITimeoutError:
            raise retryable("timeout", f"no answer within {settings.timeout_s} s") from None
        except openai.APIConnectionError as error:
            raise retryable("connection", f"connection failed: {self._scrub(error)}") from None
        return parse_chat_completion(response.text, self._scrub, response.headers)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients = {}


class OpenAIEmbedder:
    """The embeddings endpoint; the SDK retries 429/5xx/timeouts itself (with Retry-After)."""

    def __init__(self, settings: EmbedParams) -> None:
        self.name = provider_name("openai", settings.base_url)
        self.model = settings.model
        self._env_name = settings.api_key_env
        key = read_api_key(settings.api_key_env)
        self._scrub = _Scrubber(key)
        self._client = openai.OpenAI(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout_s, max_retries=settings.max_retries
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        try:
            response = self._client.embeddings.create(model=self.model, input=texts, encoding_format="float")
        except openai.APIStatusError as error:
            raise status_error(error, self._scrub, self._env_name) from None
        except openai.APIConnectionError as error:
            raise ProviderError("connection", f"embedding request failed: {self._scrub(error)}") from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise ProviderError("malformed_response", f"asked for {len(texts)} embeddings, got {len(rows)}")
        return np.asarray([row.embedding for row in rows], dtype=np.float32)
