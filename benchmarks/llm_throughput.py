"""LLM stage throughput and cache lookup speed (a benchmark, not a test).

1. 2,000 describe requests through the real `openai` client to the loopback server
   (`tests/llm_server.py`, run in its own process) answering after 100 ms, concurrency 32:
   wall time against the ideal 2000 x 0.1 / 32 s. Target: >= 90 % of ideal.
2. Looking up 100,000 keys in a describe cache of 100,000 realistic rows (50 shards).
   Target: < 1 s.

Run from the repository root: `python -m benchmarks.llm_throughput`
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import string
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pipeline.cache import DESCRIBE_SCHEMA, ShardStore, utc_now
from pipeline.describe import cached_answers, describe_molecules
from pipeline.params import DescribeParams
from pipeline.providers.base import DescribeRequest
from pipeline.providers.openai_provider import OpenAIDescriber

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "GALLON_BENCH_API_KEY"


def throughput(requests: int, latency: float, concurrency: int, workdir: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        os.environ[KEY_ENV] = "sk-bench"
        settings = DescribeParams(
            provider="openai",
            model="bench",
            base_url=url,
            api_key_env=KEY_ENV,
            image=False,
            concurrency=concurrency,
            flush_every=200,
            timeout_s=30,
        )
        items = [DescribeRequest(f"m{i}", "C", f"Describe molecule number {i}.", None) for i in range(requests)]
        store = ShardStore(workdir / "describe", DESCRIBE_SCHEMA)
        started = time.perf_counter()
        outcome = describe_molecules(items, OpenAIDescriber(settings), settings, store, "bench")
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    ideal = requests * latency / concurrency
    print(f"describe: {requests} requests, latency {latency * 1000:.0f} ms, concurrency {concurrency}")
    print(f"  status {outcome.summary['status']}")
    print(f"  wall {wall:.2f} s, ideal {ideal:.2f} s, {100 * ideal / wall:.1f} % of ideal")


def _text(words: list[str], count: int) -> str:
    return " ".join(random.choices(words, k=count))


def build_cache(root: Path, rows: int) -> list[str]:
    """A describe cache of `rows` realistic rows in 50 shards; returns the keys."""
    random.seed(0)
    words = ["".join(random.choices(string.ascii_lowercase, k=random.randint(2, 10))) for _ in range(5000)]
    store = ShardStore(root, DESCRIBE_SCHEMA)
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(rows)]
    with store.writer(flush_every=max(1, rows // 50), flush_seconds=600) as writer:
        for key in keys:
            writer.add(
                {
                    "key": key,
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "prompt_template_version": "v1",
                    "prompt": _text(words, 150),  # ~1 kB, like a prompt with a bond list
                    "answer": _text(words, 250),  # ~1.7 kB, like a 400-token answer
                    "finish_reason": "stop",
                    "prompt_tokens": 400,
                    "completion_tokens": 400,
                    "created_at": utc_now(),
                }
            )
    return keys


def time_lookups(root: Path, wanted: list[str], rows: int) -> list[str]:
    """Each kind of lookup on a store that has read nothing yet, then again on the same store.

    The describe stage's own lookup goes first, so that it pays every first-time cost of the process.
    """
    lines = []
    for label, action in [
        ("keys + answers, as the describe stage reads them", lambda s: cached_answers(s, wanted)),
        ("which keys are cached (key column only)", lambda s: s.keys() & set(wanted)),
        ("full rows, all 13 columns, as dicts", lambda s: s.lookup(wanted)),
    ]:
        store = ShardStore(root, DESCRIBE_SCHEMA)
        started = time.perf_counter()
        found = action(store)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        action(store)
        warm = time.perf_counter() - started
        assert len(found) == rows
        lines.append(f"  lookup {len(wanted)} keys, {label}: {cold:.3f} s first, {warm:.3f} s again")
    return lines


def lookup_speed(rows: int, workdir: Path) -> None:
    """Build the cache in one process and time lookups in a fresh one, as a stage run would see them."""
    root = workdir / "lookup"
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        keys = pool.submit(build_cache, root, rows).result()
    stats = ShardStore(root).stats()
    print(f"cache: {stats['rows']} rows in {stats['shards']} shards, {stats['bytes'] / 1e6:.0f} MB")
    wanted = keys + [f"missing-{i}" for i in range(100)]
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        print("\n".join(pool.submit(time_lookups, root, wanted, rows).result()))


def main() -> None:
    parser = argparse.ArgumentParser(description="LLM stage throughput and cache lookup benchmark")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        throughput(args.requests, args.latency, args.concurrency, Path(workdir))
        lookup_speed(args.rows, Path(workdir))


if __name__ == "__main__":
    main()
