"""Pytest plugin: a loopback OpenAI-compatible server and an API key that is safe to search for.

Enable with `pytest_plugins = ["tests.llm_fixtures"]` in the root conftest.py (or `-p tests.llm_fixtures`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_server import LLMServer

TEST_API_KEY = "sk-test-NEVER-WRITE-ME-7f3a9c"
TEST_KEY_ENV = "GALLON_TEST_API_KEY"


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Sets GALLON_TEST_API_KEY; tests assert this exact string is never written anywhere."""
    monkeypatch.setenv(TEST_KEY_ENV, TEST_API_KEY)
    return TEST_API_KEY
