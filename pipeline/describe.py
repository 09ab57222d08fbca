"""Ask an LLM to describe molecules: cached, concurrent, rate-limited, budgeted and resumable.

Every answer is paid for, so each success goes into the shard cache as it arrives and a
re-run asks only for keys the cache lacks. Failures are reported (by kind) but never cached,
so they are asked again next time. Keys hash only what decides the answer; concurrency,
timeouts and budgets can change freely without invalidating anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import pandas as pd
from tqdm import tqdm

from pipeline.cache import DESCRIBE_SCHEMA, ShardStore, ShardWriter, utc_now
from pipeline.errors import GallonError
from pipeline.params import DescribeParams
from pipeline.providers import provider_name
from pipeline.providers.base import (
    Completion,
    DescribeProvider,
    DescribeRequest,
    FatalProviderError,
    ProviderError,
)

CACHED, ASKED, FAILED, SKIPPED = "cached", "asked", "failed", "skipped_budget"
# failures the provider does not charge for; any other failed attempt is counted at its worst-case cost
UNBILLED_KINDS = frozenset({"rate_limited", "server_error", "connection", "bad_request"})
# OpenAI's published image token counts (a 500x500 picture: 85 at low detail, 255 at high)
IMAGE_TOKENS = {"low": 85, "high": 255, "auto": 255}


class DescribeStopped(GallonError):
    """The run stopped early (budget reached or too many failures); everything bought is cached."""

    def __init__(self, message: str, outcome: DescribeOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class BudgetExhausted(DescribeStopped):
    """max_requests or max_cost_usd reached; re-running continues where this run stopped."""


class TooManyFailures(DescribeStopped):
    """More molecules failed than describe.max_failure_fraction allows."""


@dataclass
class DescribeOutcome:
    """`summary` is written into the stage's (hashed) outputs, so it holds no run record; `wall_s` is printed only."""

    table: pd.DataFrame
    summary: dict
    wall_s: float


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def describe_cache_key(
    provider: str,
    model: str,
    template_version: str,
    prompt: str,
    image_hash: str | None,
    temperature: float,
    max_tokens: int,
) -> str:
    """sha256 of exactly what decides the answer; run settings (concurrency, budget...) stay out."""
    payload = ["describe/1", provider, model, template_version, prompt, image_hash, float(temperature), int(max_tokens)]
    return sha256_hex(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


@dataclass(frozen=True)
class _Item:
    """One distinct request (molecules with identical prompts and pictures share one)."""

    cache_key: str
    request: DescribeRequest
    image_hash: str | None
    est_prompt_tokens: int


def estimate_prompt_tokens(prompt: str, with_image: bool, detail: str) -> int:
    """~4 characters per token plus the picture; for planning and rate limits, not billing."""
    return math.ceil(len(prompt) / 4) + (IMAGE_TOKENS[detail] if with_image else 0)


def _cost(settings: DescribeParams, prompt_tokens: float, completion_tokens: float) -> float:
    prompt_cost = prompt_tokens * settings.price_per_1k_prompt_tokens
    return (prompt_cost + completion_tokens * settings.price_per_1k_completion_tokens) / 1000


def _prepare(
    requests: list[DescribeRequest], settings: DescribeParams, provider: str, model: str, template_version: str
) -> tuple[dict[str, str | None], dict[str, _Item]]:
    """molecule key -> cache key (None: missing picture), and the distinct items by cache key."""
    key_of: dict[str, str | None] = {}
    items: dict[str, _Item] = {}
    for request in requests:
        if settings.image and request.image_png is None:
            key_of[request.molecule_key] = None
            continue
        sent = request if settings.image else replace(request, image_png=None)
        image_hash = sha256_hex(sent.image_png) if sent.image_png is not None else None
        key = describe_cache_key(
            provider, model, template_version, sent.prompt, image_hash, settings.temperature, settings.max_tokens
        )
        key_of[request.molecule_key] = key
        if key not in items:
            tokens = estimate_prompt_tokens(sent.prompt, sent.image_png is not None, settings.image_detail)
            items[key] = _Item(key, sent, image_hash, tokens)
    return key_of, items


# -- planning ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DescribePlan:
    molecules: int
    distinct_requests: int
    cached: int
    missing_image: int
    to_send: int
    within_budget: int
    est_prompt_tokens: int
    est_completion_tokens_max: int
    est_cost_usd_max: float

    def format(self) -> str:
        lines = [
            f"molecules:            {self.molecules}",
            f"distinct requests:    {self.distinct_requests}",
            f"already cached:       {self.cached}",
            f"missing picture:      {self.missing_image} (will fail: turn describe.image off or re-run render)",
            f"would be sent:        {self.to_send}",
            f"sent within budget:   {self.within_budget}",
            f"est. prompt tokens:   {self.est_prompt_tokens}",
            f"max completion tokens:{self.est_completion_tokens_max:>7} (max_tokens per request; real use is less)",
            f"est. cost (max):      ${self.est_cost_usd_max:.4f}",
        ]
        return "\n".join(lines)


def plan_describe(
    requests: list[DescribeRequest],
    settings: DescribeParams,
    store: ShardStore,
    template_version: str,
    provider: str | None = None,
) -> DescribePlan:
    """What a run would do and cost, sending nothing (and needing no API key)."""
    provider = provider or provider_name(settings.provider, settings.base_url)
    key_of, items = _prepare(requests, settings, provider, settings.model, template_version)
    cached = store.keys() & set(items)
    pending = [item for key, item in items.items() if key not in cached]
    budget = _Budget(settings)
    within = 0
    for item in pending:
        if budget.admit(item) is None:
            within += 1
    prompt_tokens = sum(item.est_prompt_tokens for item in pending)
    completion_tokens = settings.max_tokens * len(pending)
    return DescribePlan(
        molecules=len(key_of),
        distinct_requests=len(items),
        cached=len(cached),
        missing_image=sum(key is None for key in key_of.values()),
        to_send=len(pending),
        within_budget=within,
        est_prompt_tokens=prompt_tokens,
        est_completion_tokens_max=completion_tokens,
        est_cost_usd_max=_cost(settings, prompt_tokens, completion_tokens),
    )


# -- running ----------------------------------------------------------------------------------
class _Budget:
    """max_requests and max_cost_usd; cost is reserved at the worst case (max_tokens) until known."""

    def __init__(self, settings: DescribeParams) -> None:
        self.settings = settings
        self.started = 0
        self.spent = 0.0
        self.reserved = 0.0

    def worst_case(self, item: _Item) -> float:
        return _cost(self.settings, item.est_prompt_tokens, self.settings.max_tokens)

    def admit(self, item: _Item) -> str | None:
        """None and reserve, or the reason this request would break the budget."""
        settings = self.settings
        if settings.max_requests is not None and self.started >= settings.max_requests:
            return f"describe.max_requests ({settings.max_requests}) reached"
        cost = self.worst_case(item)
        if settings.max_cost_usd is not None and self.spent + self.reserved + cost > settings.max_cost_usd:
            return f"describe.max_cost_usd (${settings.max_cost_usd}) would be exceeded"
        self.started += 1
        self.reserved += cost
        return None

    def settle(self, item: _Item, cost: float | None) -> None:
        """Release the reservation and book `cost` (None: unknown, so the worst case)."""
        self.reserved -= self.worst_case(item)
        self.spent += self.worst_case(item) if cost is None else cost


class _Limiter:
    """Requests- and tokens-per-minute buckets (one second of burst) plus a shared Retry-After pause."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.buckets = [_Bucket(rate) if rate else None for rate in (requests_per_minute, tokens_per_minute)]
        self.pause_until = 0.0

    async def acquire(self, tokens: int) -> None:
        while (delay := self.pause_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        for bucket, amount in zip(self.buckets, (1, tokens), strict=True):
            if bucket is not None:
                await bucket.take(amount)

    def refund_tokens(self, amount: int) -> None:
        if self.buckets[1] is not None and amount > 0:
            self.buckets[1].refund(amount)

    def pause(self, seconds: float) -> None:
        self.pause_until = max(self.pause_until, time.monotonic() + seconds)


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        """Wait until the bucket holds min(amount, capacity), then take `amount` (going into debt if larger)."""
        while True:
            self._refill()
            needed = min(amount, self.capacity)
            if self.level >= needed:
                self.level -= amount
                return
            await asyncio.sleep((needed - self.level) / self.rate)

    def refund(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


@dataclass
class _Result:
    status: str
    description: str | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass
class _Run:
    """State of one run, shared by the workers (all on one event loop, so no locks)."""

    provider: DescribeProvider
    settings: DescribeParams
    writer: ShardWriter
    template_version: str
    results: dict[str, _Result] = field(default_factory=dict)
    attempts: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = 0
    failed: int = 0
    stop_reason: str | None = None
    progress: tqdm | None = None

    def __post_init__(self) -> None:
        self.budget = _Budget(self.settings)
        self.limiter = _Limiter(self.settings.requests_per_minute, self.settings.tokens_per_minute)

    async def run(self, pending: list[_Item]) -> None:
        queue = iter(pending)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.settings.concurrency, len(pending))):
                    group.create_task(self._worker(queue))
        except BaseExceptionGroup as group:  # a fatal error (or a bug) in one worker: report it, not the group
            raise group.exceptions[0] from None
        finally:
            close = getattr(self.provider, "aclose", None)
            if close is not None:
                await close()

    async def _worker(self, queue: Iterator[_Item]) -> None:
        for item in queue:
            refused = self.budget.admit(item)
            if refused is not None:
                self.stop_reason = self.stop_reason or refused
                self.results[item.cache_key] = _Result(SKIPPED, reason="budget", detail=refused)
                continue
            self._finish(item, await self._ask(item))

    async def _ask(self, item: _Item) -> _Result:
        settings = self.settings
        for attempt in range(settings.max_retries + 1):
            await self.limiter.acquire(item.est_prompt_tokens + settings.max_tokens)
            self.attempts += 1
            started = time.monotonic()
            try:
                async with asyncio.timeout(settings.timeout_s * 1.5 + 1):
                    completion = await self.provider.complete(item.request)
            except FatalProviderError:
                raise
            except (ProviderError, TimeoutError) as error:
                if isinstance(error, TimeoutError):
                    error = ProviderError("timeout", f"no answer within {settings.timeout_s} s", retryable=True)
                billed = error.kind not in UNBILLED_KINDS
                if not error.retryable or attempt == settings.max_retries:
                    self.budget.settle(item, None if billed else 0.0)
                    return _Result(FAILED, reason=error.kind, detail=str(error))
                if billed:
                    self.budget.spent += self.budget.worst_case(item)
                self.retries += 1
                await asyncio.sleep(self._delay(attempt, error.retry_after))
                continue
            self._save(item, completion, time.monotonic() - started)
            return _Result(ASKED, description=completion.text)
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After (pausing every worker), else exponential backoff with jitter."""
        if retry_after is not None:
            self.limiter.pause(retry_after)
            return retry_after + random.uniform(0, 0.1 * self.settings.retry_base_s)
        ceiling = min(self.settings.retry_max_s, self.settings.retry_base_s * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _save(self, item: _Item, completion: Completion, latency: float) -> None:
        settings = self.settings
        known = completion.prompt_tokens or completion.completion_tokens
        cost = _cost(settings, completion.prompt_tokens, completion.completion_tokens) if known else None
        self.budget.settle(item, cost)
        if known:
            estimate = item.est_prompt_tokens + settings.max_tokens
            self.limiter.refund_tokens(estimate - completion.prompt_tokens - completion.completion_tokens)
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.writer.add(
            {
                "key": item.cache_key,
                "provider": self.provider.name,
                "model": self.provider.model,
                "prompt_template_version": self.template_version,
                "prompt_hash": sha256_hex(item.request.prompt),
                "image_hash": item.image_hash,
                "prompt": item.request.prompt,
                "answer": completion.text,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "latency_s": latency,
                "created_at": utc_now(),
            }
        )

    def _finish(self, item: _Item, result: _Result) -> None:
        self.results[item.cache_key] = result
        self.failed += result.status == FAILED
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix_str(
                f"cached={self.cached} failed={self.failed} left={self.progress.total - self.progress.n} "
                f"tokens={self.prompt_tokens + self.completion_tokens} cost=${self.budget.spent:.4f}",
                refresh=False,
            )


def cached_answers(store: ShardStore, keys: Iterable[str]) -> dict[str, str]:
    """cache key -> answer for the cached keys, reading only those two columns (the fast path)."""
    found = store.lookup_table(keys, ["answer"])
    return dict(zip(found.column("key").to_pylist(), found.column("answer").to_pylist(), strict=True))


def describe_molecules(
    requests: list[DescribeRequest],
    provider: DescribeProvider,
    settings: DescribeParams,
    store: ShardStore,
    template_version: str,
) -> DescribeOutcome:
    """Describe every molecule, asking the provider only for answers the cache lacks.

    Raises FatalProviderError (bad key, no quota), BudgetExhausted or TooManyFailures; in every
    case the answers received so far are already in the cache, so a re-run pays only for the rest.
    """
    started = time.monotonic()
    key_of, items = _prepare(requests, settings, provider.name, provider.model, template_version)
    cached = cached_answers(store, items)
    pending = [item for key, item in items.items() if key not in cached]
    results = {key: _Result(CACHED, description=answer) for key, answer in cached.items()}
    progress = tqdm(
        total=len(items),
        initial=len(cached),
        desc=f"describe {provider.name}/{provider.model}",
        unit="req",
        file=sys.stderr,
        mininterval=0.5,
    )
    with store.writer(settings.flush_every, settings.flush_seconds, DESCRIBE_SCHEMA) as writer, progress:
        run = _Run(provider, settings, writer, template_version, cached=len(cached), progress=progress)
        if pending:
            asyncio.run(run.run(pending))
    results.update(run.results)
    outcome = _outcome(requests, key_of, results, run, time.monotonic() - started)
    _raise_if_stopped(outcome, settings)
    return outcome


def _outcome(
    requests: list[DescribeRequest], key_of: dict[str, str | None], results: dict[str, _Result], run: _Run, wall: float
) -> DescribeOutcome:
    rows = []
    for request in requests:
        key = key_of[request.molecule_key]
        if key is None:
            result = _Result(FAILED, reason="missing_image", detail="describe.image is on but there is no picture")
        else:
            result = results[key]
        rows.append(
            {
                "molecule_key": request.molecule_key,
                "cache_key": key,
                "description": result.description,
                "status": result.status,
                "reason": result.reason,
                "detail": result.detail,
            }
        )
    columns = ["molecule_key", "cache_key", "description", "status", "reason", "detail"]
    table = pd.DataFrame(rows, columns=columns, dtype=object)  # object: a failed description stays None, not NaN
    summary = {
        "molecules": len(table),
        "status": {status: int((table["status"] == status).sum()) for status in (CACHED, ASKED, FAILED, SKIPPED)},
        "failures_by_kind": dict(Counter(table.loc[table["status"] == FAILED, "reason"])),
        "requests_sent": run.attempts,
        "retries": run.retries,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost_usd": round(run.budget.spent, 6),
        "stopped_by_budget": run.stop_reason,
    }
    return DescribeOutcome(table=table, summary=summary, wall_s=wall)


def _raise_if_stopped(outcome: DescribeOutcome, settings: DescribeParams) -> None:
    summary = outcome.summary
    failed, total = summary["status"][FAILED], summary["molecules"]
    if total and failed / total > settings.max_failure_fraction:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(summary["failures_by_kind"].items()))
        raise TooManyFailures(
            f"{failed} of {total} molecules failed ({kinds}), more than describe.max_failure_fraction="
            f"{settings.max_failure_fraction}. The {summary['status'][ASKED]} answers received are cached; "
            "fix the cause and re-run to ask only for the rest.",
            outcome,
        )
    if summary["stopped_by_budget"]:
        raise BudgetExhausted(
            f"budget reached: {summary['stopped_by_budget']}. {summary['status'][ASKED]} answers were bought and "
            f"cached; {summary['status'][SKIPPED]} molecules are not described yet. Raise the budget and re-run "
            "to continue (cached answers are free).",
            outcome,
        )
