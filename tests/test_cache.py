"""The shard store: union reads, atomic immutable shards, flushing, corruption reports, maintenance."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cache import DESCRIBE_SCHEMA, EMBED_SCHEMA, CorruptShardError, ShardStore, utc_now


def row(key: str, answer: str = "an answer", model: str = "m") -> dict:
    return {
        "key": key,
        "provider": "p",
        "model": model,
        "prompt": f"prompt {key}",
        "answer": answer,
        "created_at": utc_now(),
    }


def fill(store: ShardStore, keys: list[str], flush_every: int = 1000, **extra: str) -> None:
    with store.writer(flush_every=flush_every, flush_seconds=60) as writer:
        for key in keys:
            writer.add(row(key, **extra))


def test_lookup_returns_cached_rows_only(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, ["a", "b"])
    found = store.lookup(["a", "b", "missing"])
    assert set(found) == {"a", "b"}
    assert found["a"]["answer"] == "an answer" and found["a"]["prompt"] == "prompt a"
    assert set(store.lookup(["a"], columns=["answer"])["a"]) == {"key", "answer"}
    assert store.lookup(["missing"]) == {}


def test_empty_or_absent_root_is_an_empty_cache(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "absent", DESCRIBE_SCHEMA)
    assert store.lookup(["x"]) == {} and store.keys() == set()
    assert store.stats()["rows"] == 0 and store.verify().ok


def test_writer_flushes_every_n_rows_into_immutable_uniquely_named_shards(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, [f"k{i}" for i in range(10)], flush_every=3)
    shards = store.shard_paths()
    assert len(shards) == 4  # 3 + 3 + 3 + 1 on close
    assert len({p.name for p in shards}) == 4
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in shards)
    assert not list(tmp_path.glob(".tmp-*"))


def test_writer_flushes_after_flush_seconds_while_still_open(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    with store.writer(flush_every=1000, flush_seconds=0.05) as writer:
        writer.add(row("slow"))
        deadline = time.monotonic() + 5
        while not store.shard_paths() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(ShardStore(tmp_path).keys()) == {"slow"}


def test_writer_flushes_on_exception(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    with pytest.raises(KeyboardInterrupt), store.writer(flush_every=1000, flush_seconds=60) as writer:
        writer.add(row("kept"))
        raise KeyboardInterrupt
    assert store.keys() == {"kept"}


def test_two_caches_combine_by_copying_files(tmp_path: Path) -> None:
    alice, bob = ShardStore(tmp_path / "a", DESCRIBE_SCHEMA), ShardStore(tmp_path / "b", DESCRIBE_SCHEMA)
    fill(alice, ["shared", "only-a"], answer="from a")
    fill(bob, ["shared", "only-b"], answer="from b")
    for path in bob.shard_paths():
        shutil.copy(path, alice.root / path.name)
    assert alice.keys() == {"shared", "only-a", "only-b"}
    assert alice.table().num_rows == 3  # de-duplicated by key
    assert alice.stats()["shards"] == 2


def test_truncated_shard_is_reported_by_name_never_read_as_empty(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, ["a"])
    fill(store, ["b"])
    bad = store.shard_paths()[1]
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(CorruptShardError, match=bad.name) as error:
        ShardStore(tmp_path, DESCRIBE_SCHEMA).lookup(["a"])
    assert "gallon cache verify" in str(error.value)
    report = store.verify()
    assert not report.ok and [p.name for p in report.problems] == [bad.name] and report.shards_ok == 1


def test_temp_files_of_a_killed_writer_are_ignored_and_reported(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, ["a"])
    (tmp_path / ".tmp-part-half-written.parquet").write_bytes(b"PAR1 garbage")
    assert store.keys() == {"a"}
    assert store.verify().stale_temp_files == [".tmp-part-half-written.parquet"]


def test_new_shards_are_seen_by_an_existing_store(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, ["a"])
    assert store.keys() == {"a"}
    fill(ShardStore(tmp_path, DESCRIBE_SCHEMA), ["b"])
    assert store.keys() == {"a", "b"}


def test_compact_merges_without_losing_rows(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, [f"k{i}" for i in range(7)], flush_every=2)
    fill(store, ["k0", "k1"])  # duplicates across shards
    before = store.table().to_pandas().sort_values("key").reset_index(drop=True)
    merged = store.compact()
    assert store.shard_paths() == [merged]
    after = store.table().to_pandas().sort_values("key").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)


def test_stats_counts_rows_per_provider_and_model(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, DESCRIBE_SCHEMA)
    fill(store, ["a", "b"], model="x")
    fill(store, ["c"], model="y")
    stats = store.stats()
    assert stats["rows"] == 3 and stats["rows_by_provider_model"] == {"p/x": 2, "p/y": 1}
    assert stats["bytes"] > 0


def test_export_is_one_parquet_readable_by_pandas_pyarrow_and_duckdb(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "cache", DESCRIBE_SCHEMA)
    fill(store, ["a", "b"], flush_every=1)
    out = store.export(tmp_path / "export" / "describe.parquet")
    assert pq.read_table(out).schema.equals(DESCRIBE_SCHEMA)
    assert sorted(pd.read_parquet(out)["key"]) == ["a", "b"]
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"select count(*) from '{store.root}/part-*.parquet'").fetchall() == [(2,)]


def test_embed_schema_stores_float32_lists(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, EMBED_SCHEMA)
    with store.writer(10, 60) as writer:
        writer.add(
            {
                "key": "e",
                "provider": "p",
                "model": "m",
                "text_hash": "h",
                "embedding": [0.5, 1.5],
                "created_at": utc_now(),
            }
        )
    table = store.lookup_table(["e"], ["embedding"])
    assert pa.types.is_float32(table.schema.field("embedding").type.value_type)
    assert table.column("embedding").to_pylist() == [[0.5, 1.5]]


def test_shard_without_key_column_is_reported(tmp_path: Path) -> None:
    pq.write_table(pa.table({"answer": ["x"]}), tmp_path / "part-0-nokey.parquet")
    with pytest.raises(CorruptShardError, match="part-0-nokey.parquet"):
        ShardStore(tmp_path).keys()
    assert [problem.name for problem in ShardStore(tmp_path).verify().problems] == ["part-0-nokey.parquet"]
