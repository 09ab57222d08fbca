"""The describe runner with the real `openai` client against the loopback server: exact call counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cache import DESCRIBE_SCHEMA, ShardStore
from pipeline.describe import (
    BudgetExhausted,
    TooManyFailures,
    describe_cache_key,
    describe_molecules,
    plan_describe,
)
from pipeline.params import DescribeParams
from pipeline.providers.base import DescribeRequest, FatalProviderError
from pipeline.providers.offline import OfflineDescriber
from pipeline.providers.openai_provider import OpenAIDescriber
from tests.llm_fixtures import TEST_KEY_ENV
from tests.llm_server import Fault, LLMServer, answer_for

ROOT = Path(__file__).resolve().parents[1]
SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "OCCO", "C1CC1", "CC#N", "CCOC", "CS"]
TEMPLATE = "test-v1"


def settings(server: LLMServer, **changes: object) -> DescribeParams:
    base = {
        "provider": "openai",
        "model": "model-x",
        "base_url": server.url,
        "api_key_env": TEST_KEY_ENV,
        "timeout_s": 2.0,
        "retry_base_s": 0.01,
        "max_retries": 3,
        "concurrency": 4,
        "flush_every": 1,
    }
    return DescribeParams(**(base | changes))


def requests(count: int = 10, image: bool = True) -> list[DescribeRequest]:
    return [
        DescribeRequest(
            f"mol{i}",
            SMILES[i % len(SMILES)],
            f"Describe molecule #{i}# {SMILES[i % len(SMILES)]}.",
            f"png-{i}".encode() if image else None,
        )
        for i in range(count)
    ]


def run(server: LLMServer, store: ShardStore, items: list[DescribeRequest] | None = None, **changes: object):
    config = settings(server, **changes)
    return describe_molecules(items or requests(), OpenAIDescriber(config), config, store, TEMPLATE)


@pytest.fixture
def store(tmp_path: Path) -> ShardStore:
    return ShardStore(tmp_path / "cache" / "describe")  # no schema, as the stage opens it: the runner sets it


def test_cache_key_covers_the_answer_inputs_only() -> None:
    base = ("openai", "m", "v1", "prompt", "img", 0.0, 700)
    key = describe_cache_key(*base)
    assert len(key) == 64 and describe_cache_key(*base) == key
    for position, other in enumerate(["offline", "m2", "v2", "prompt!", None, 0.5, 701]):
        changed = list(base)
        changed[position] = other
        assert describe_cache_key(*changed) != key


@pytest.mark.usefixtures("api_key")
def test_second_and_third_runs_ask_nothing_and_run_settings_do_not_change_keys(
    llm_server: LLMServer, store: ShardStore
) -> None:
    first = run(llm_server, store)
    assert llm_server.chat_hits == 10 and first.summary["status"]["asked"] == 10
    assert first.table["description"].tolist() == [answer_for(r.prompt, "model-x") for r in requests()]
    again = run(llm_server, store, concurrency=1, timeout_s=9, max_retries=0, max_requests=0, max_cost_usd=0)
    assert llm_server.chat_hits == 10 and again.summary["status"]["cached"] == 10
    assert again.table["description"].tolist() == first.table["description"].tolist()
    run(llm_server, store)
    assert llm_server.chat_hits == 10
    assert all(pq.read_schema(path).equals(DESCRIBE_SCHEMA) for path in store.shard_paths())


@pytest.mark.usefixtures("api_key")
def test_swapping_provider_x_y_x_reuses_x(llm_server: LLMServer, store: ShardStore) -> None:
    run(llm_server, store)
    offline = DescribeParams(provider="offline", model="rdkit-descriptors")
    y = describe_molecules(requests(), OfflineDescriber(offline.model), offline, store, TEMPLATE)
    assert y.summary["status"]["asked"] == 10
    run(llm_server, store, model="model-y")
    assert llm_server.chat_hits == 20
    back = run(llm_server, store)
    assert llm_server.chat_hits == 20 and back.summary["status"]["cached"] == 10


@pytest.mark.usefixtures("api_key")
def test_missing_picture_fails_instead_of_sending_text_only(llm_server: LLMServer, store: ShardStore) -> None:
    items = requests(3)
    items[1] = DescribeRequest(items[1].molecule_key, items[1].smiles, items[1].prompt, None)
    outcome = run(llm_server, store, items, max_failure_fraction=0.5)
    assert llm_server.chat_hits == 2
    failed = outcome.table.set_index("molecule_key").loc["mol1"]
    assert failed["status"] == "failed" and failed["reason"] == "missing_image" and failed["description"] is None
    images = [part for body in llm_server.requests for part in body["messages"][0]["content"] if part["type"] != "text"]
    assert all(part["image_url"]["url"].startswith("data:image/png;base64,") for part in images)
    assert all(part["image_url"]["detail"] == "low" for part in images)


@pytest.mark.usefixtures("api_key")
def test_image_off_sends_text_only_under_its_own_keys(llm_server: LLMServer, store: ShardStore) -> None:
    with_image = run(llm_server, store, requests(2))
    without = run(llm_server, store, requests(2), image=False)
    assert llm_server.chat_hits == 4
    assert set(with_image.table["cache_key"]).isdisjoint(without.table["cache_key"])
    assert all(isinstance(body["messages"][0]["content"], str) for body in llm_server.requests[2:])


@pytest.mark.usefixtures("api_key")
def test_identical_requests_are_asked_once(llm_server: LLMServer, store: ShardStore) -> None:
    one = requests(1)[0]
    twins = [one, DescribeRequest("twin", one.smiles, one.prompt, one.image_png)]
    outcome = run(llm_server, store, twins)
    assert llm_server.chat_hits == 1 and outcome.table["status"].tolist() == ["asked", "asked"]


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("fault", ["429", "500", "stall", "drop", "error_body", "no_choices", "malformed"])
def test_transient_faults_are_retried(llm_server: LLMServer, store: ShardStore, fault: str) -> None:
    llm_server.stall_s = 1.0
    llm_server.script(Fault(fault), Fault(fault), match="#3#")
    outcome = run(llm_server, store, timeout_s=0.3)
    assert llm_server.chat_hits == 12
    assert outcome.summary["status"]["asked"] == 10 and outcome.summary["retries"] == 2


@pytest.mark.usefixtures("api_key")
def test_retry_after_is_honoured(llm_server: LLMServer, store: ShardStore) -> None:
    llm_server.script(Fault("429", retry_after=0.4), match="#0#")
    started = time.monotonic()
    run(llm_server, store, requests(1))
    assert time.monotonic() - started >= 0.4 and llm_server.chat_hits == 2


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("fault, kind", [("empty", "empty_content"), ("length", "length"), ("refusal", "refusal")])
def test_bad_answers_fail_once_are_not_cached_and_are_asked_again(
    llm_server: LLMServer, store: ShardStore, fault: str, kind: str
) -> None:
    llm_server.script(Fault(fault), match="#2#")
    outcome = run(llm_server, store, max_failure_fraction=0.2)
    assert llm_server.chat_hits == 10
    assert outcome.summary["failures_by_kind"] == {kind: 1} and outcome.summary["status"]["asked"] == 9
    assert outcome.table.loc[2, "description"] is None and len(store.keys()) == 9
    rerun = run(llm_server, store)
    assert llm_server.chat_hits == 11 and rerun.summary["status"] == {
        "cached": 9,
        "asked": 1,
        "failed": 0,
        "skipped_budget": 0,
    }


@pytest.mark.usefixtures("api_key")
def test_retries_run_out_into_a_counted_failure(llm_server: LLMServer, store: ShardStore) -> None:
    llm_server.script(*[Fault("500")] * 5, match="#1#")
    outcome = run(llm_server, store, max_retries=2, max_failure_fraction=0.2)
    assert llm_server.chat_hits == 12 and outcome.summary["failures_by_kind"] == {"server_error": 1}


@pytest.mark.usefixtures("api_key")
def test_too_many_failures_raise_after_saving_the_successes(llm_server: LLMServer, store: ShardStore) -> None:
    llm_server.script(Fault("length"), Fault("length"), match="Describe")
    with pytest.raises(TooManyFailures, match="length: 2") as error:
        run(llm_server, store, max_failure_fraction=0.1)
    assert error.value.outcome.summary["status"]["failed"] == 2 and len(store.keys()) == 8


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("fault, kind", [("401", "auth"), ("quota", "insufficient_quota")])
def test_auth_and_quota_errors_fail_fast_keeping_earlier_answers(
    llm_server: LLMServer, store: ShardStore, fault: str, kind: str
) -> None:
    llm_server.script(Fault(fault), match="#5#")
    with pytest.raises(FatalProviderError) as error:
        run(llm_server, store, concurrency=1)
    assert error.value.kind == kind
    assert llm_server.chat_hits == 6 and len(store.keys()) == 5


@pytest.mark.usefixtures("api_key")
def test_request_budget_stops_cleanly_and_a_rerun_continues(llm_server: LLMServer, store: ShardStore) -> None:
    with pytest.raises(BudgetExhausted, match="max_requests") as error:
        run(llm_server, store, max_requests=4)
    assert llm_server.chat_hits == 4 and len(store.keys()) == 4
    assert error.value.outcome.summary["status"]["skipped_budget"] == 6
    run(llm_server, store)
    assert llm_server.chat_hits == 10
    assert all(pq.read_schema(path).equals(DESCRIBE_SCHEMA) for path in store.shard_paths())


@pytest.mark.usefixtures("api_key")
def test_cost_budget_is_never_exceeded(llm_server: LLMServer, store: ShardStore) -> None:
    prices = {"price_per_1k_prompt_tokens": 1.0, "price_per_1k_completion_tokens": 1.0, "max_tokens": 100}
    with pytest.raises(BudgetExhausted, match="max_cost_usd") as error:
        run(llm_server, store, max_cost_usd=0.5, **prices)
    summary = error.value.outcome.summary
    assert 0 < summary["cost_usd"] <= 0.5 and llm_server.chat_hits == summary["status"]["asked"] < 10


@pytest.mark.usefixtures("api_key")
def test_answers_that_fail_after_being_billed_count_against_the_cost_budget(
    llm_server: LLMServer, store: ShardStore
) -> None:
    llm_server.script(*[Fault("length")] * 10, match="Describe")
    prices = {"price_per_1k_prompt_tokens": 1.0, "price_per_1k_completion_tokens": 1.0, "max_tokens": 100}
    with pytest.raises(BudgetExhausted):
        run(llm_server, store, max_cost_usd=0.5, max_failure_fraction=1.0, **prices)
    assert llm_server.chat_hits < 10


@pytest.mark.usefixtures("api_key")
def test_requests_per_minute_limit_spaces_requests(llm_server: LLMServer, store: ShardStore) -> None:
    started = time.monotonic()
    run(llm_server, store, requests(15), requests_per_minute=600, concurrency=8)
    assert time.monotonic() - started >= 0.45  # a one-second burst (10) at once, then one every 0.1 s


def test_plan_sends_nothing_and_counts_what_is_cached(llm_server: LLMServer, store: ShardStore, api_key: str) -> None:
    items = requests(4)
    run(llm_server, store, items[:1])
    items.append(DescribeRequest("nopic", "C", "Describe C", None))
    config = settings(llm_server, max_requests=2, price_per_1k_prompt_tokens=1.0)
    plan = plan_describe(items, config, store, TEMPLATE)
    assert (plan.molecules, plan.cached, plan.missing_image, plan.to_send, plan.within_budget) == (5, 1, 1, 3, 2)
    assert plan.est_cost_usd_max > 0 and "would be sent" in plan.format()
    assert llm_server.chat_hits == 1


CHILD = """
import signal
import sys
# A test runner started in the background (`cmd &` in a script) hands its children an ignored SIGINT;
# a person's Ctrl-C is not ignored, so restore Python's handler to test what a person gets.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pipeline.cache import DESCRIBE_SCHEMA, ShardStore
from pipeline.describe import describe_molecules
from pipeline.params import DescribeParams
from pipeline.providers.base import DescribeRequest
from pipeline.providers.openai_provider import OpenAIDescriber
url, root, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = DescribeParams(provider="openai", model="model-x", base_url=url, api_key_env="GALLON_TEST_API_KEY",
                        concurrency=4, flush_every=1, timeout_s=5, retry_base_s=0.01)
items = [DescribeRequest(f"mol{i}", "C", f"Describe molecule #{i}#.", None) for i in range(count)]
describe_molecules(items, OpenAIDescriber(config), config.model_copy(update={"image": False}),
                   ShardStore(root, DESCRIBE_SCHEMA), "test-v1")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killed_run_loses_at_most_in_flight_requests(tmp_path: Path, api_key: str, signum: int) -> None:
    count, concurrency = 60, 4
    root = tmp_path / "cache"
    with LLMServer(latency=0.05) as server:
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.url, str(root), str(count)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while server.served < 20 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        child.send_signal(signum)
        stderr = child.communicate(timeout=30)[1].decode()
        assert child.returncode != 0, stderr
        served_before = server.served
        store = ShardStore(root, DESCRIBE_SCHEMA)
        saved = len(store.keys())
        assert 20 - concurrency <= saved < count
        assert served_before - saved <= concurrency, "more than the in-flight answers were lost"
        server.reset_counts()
        config = DescribeParams(
            provider="openai",
            model="model-x",
            base_url=server.url,
            api_key_env=TEST_KEY_ENV,
            image=False,
            concurrency=4,
            timeout_s=5,
        )
        items = [DescribeRequest(f"mol{i}", "C", f"Describe molecule #{i}#.", None) for i in range(count)]
        outcome = describe_molecules(items, OpenAIDescriber(config), config, store, TEMPLATE)
        assert server.chat_hits == count - saved
        assert outcome.summary["status"] == {"cached": saved, "asked": count - saved, "failed": 0, "skipped_budget": 0}
        assert outcome.table["description"].tolist() == [answer_for(item.prompt, "model-x") for item in items]
    assert api_key not in stderr


def test_api_key_is_in_no_file_and_no_log(
    llm_server: LLMServer,
    tmp_path: Path,
    api_key: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ShardStore(tmp_path / "cache", DESCRIBE_SCHEMA)
    run(llm_server, store)
    llm_server.script(Fault("401"))
    with pytest.raises(FatalProviderError) as error:
        run(llm_server, store, requests(12))
    assert llm_server.headers[0]["authorization"] == f"Bearer {api_key}"  # it was really sent
    assert api_key not in str(error.value) and api_key not in repr(error.value)
    store.export(tmp_path / "export.parquet")
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written and all(api_key.encode() not in path.read_bytes() for path in written)
    out, err = capfd.readouterr()
    assert api_key not in out + err + caplog.text
