"""`gallon cache ...` and `gallon plan` on real files: shards on disk, a real pipeline repo, the loopback server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cache import DESCRIBE_SCHEMA, EMBED_SCHEMA, ShardStore
from stages.cli import app
from tests.llm_fixtures import TEST_KEY_ENV
from tests.pipeline_repo import PipelineRepo, small_params

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _describe_rows(keys: list[str], model: str = "m1") -> pa.Table:
    row = {name: None for name in DESCRIBE_SCHEMA.names}
    rows = [{**row, "key": key, "provider": "openai", "model": model, "answer": f"about {key}"} for key in keys]
    return pa.Table.from_pylist(rows, schema=DESCRIBE_SCHEMA)


def _embed_rows(keys: list[str]) -> pa.Table:
    rows = [
        {"key": key, "provider": "local", "model": "mini", "text_hash": key, "embedding": [0.5], "created_at": NOW}
        for key in keys
    ]
    return pa.Table.from_pylist(rows, schema=EMBED_SCHEMA)


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    """Three describe shards (one key repeated across two) and one embed shard."""
    root = tmp_path / "cache"
    describe = ShardStore(root / "describe", DESCRIBE_SCHEMA)
    describe.write_shard(_describe_rows(["a", "b"]))
    describe.write_shard(_describe_rows(["b", "c"]))
    describe.write_shard(_describe_rows(["d"], model="m2"))
    ShardStore(root / "embed", EMBED_SCHEMA).write_shard(_embed_rows(["x", "y"]))
    return root


def gallon(*args: str):
    return CliRunner().invoke(app, list(args))


def test_stats_counts_distinct_rows_per_store_and_model(cache_root):
    result = gallon("cache", "stats", "--root", str(cache_root))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("describe: 4 rows in 3 shards")
    assert "  openai/m1: 3" in lines and "  openai/m2: 1" in lines
    assert any(line.startswith("embed: 2 rows in 1 shards") for line in lines)


def test_verify_names_a_truncated_shard_and_fails(cache_root):
    assert gallon("cache", "verify", "--root", str(cache_root)).exit_code == 0
    shards = ShardStore(cache_root / "describe").shard_paths()
    data = shards[1].read_bytes()
    shards[1].write_bytes(data[: len(data) // 2])

    result = gallon("cache", "verify", "--root", str(cache_root))
    assert result.exit_code == 1
    corrupt = [line for line in result.output.splitlines() if "CORRUPT" in line]
    assert len(corrupt) == 1 and corrupt[0].startswith(f"describe: CORRUPT {shards[1].name}")
    assert "embed: 1 shards readable, 2 rows" in result.output


def test_commands_that_read_rows_refuse_a_corrupt_shard_by_name(cache_root):
    shard = ShardStore(cache_root / "describe").shard_paths()[0]
    shard.write_bytes(b"not parquet")
    for command in (["stats"], ["compact"], ["export", str(cache_root / "out.parquet")], ["share"]):
        result = gallon("cache", *command, "--root", str(cache_root))
        assert result.exit_code == 2, command
        assert shard.name in result.output
    assert len(ShardStore(cache_root / "describe").shard_paths()) == 3  # compact removed nothing
    assert not (cache_root.parent / "cache.dvc").exists()  # share did not call dvc


def test_share_refuses_half_written_shards(cache_root):
    (cache_root / "describe" / ".tmp-part-unfinished.parquet").write_bytes(b"partial")
    result = gallon("cache", "share", "--root", str(cache_root))
    assert result.exit_code == 2 and "describe/.tmp-part-unfinished.parquet" in result.output


def test_compact_keeps_every_key_in_one_shard_per_store(cache_root):
    before = {name: ShardStore(cache_root / name).table().sort_by("key") for name in ("describe", "embed")}
    result = gallon("cache", "compact", "--root", str(cache_root))
    assert result.exit_code == 0, result.output
    assert "describe: 3 shards -> 1" in result.output and "embed: 1 shards -> 1" in result.output
    for name, table in before.items():
        store = ShardStore(cache_root / name)
        assert len(store.shard_paths()) == 1
        assert store.table().sort_by("key").equals(table)


def test_export_writes_one_deduplicated_file(cache_root, tmp_path):
    out = tmp_path / "exports" / "describe.parquet"
    assert gallon("cache", "export", str(out), "--root", str(cache_root)).exit_code == 0
    exported = pq.read_table(out)
    assert sorted(exported.column("key").to_pylist()) == ["a", "b", "c", "d"]
    assert exported.schema.equals(DESCRIBE_SCHEMA)

    embed_out = tmp_path / "embed.parquet"
    assert gallon("cache", "export", str(embed_out), "--store", "embed", "--root", str(cache_root)).exit_code == 0
    assert pq.read_table(embed_out).column("key").to_pylist() == ["x", "y"]


def _plan(repo: PipelineRepo) -> dict[str, str]:
    """`gallon plan` as `label: value` pairs; run without any API key in the environment."""
    output = repo.run("gallon", "plan").stdout
    return dict(line.split(":", 1) for line in output.splitlines())


def test_plan_counts_what_describe_would_send_without_a_key_or_a_request(tmp_path, llm_server, api_key):
    params = small_params(render={"size": 64, "workers": 1})
    params["describe"].update(
        {
            "provider": "openai",
            "model": "test-vision-model",
            "base_url": llm_server.url,
            "api_key_env": TEST_KEY_ENV,
            "max_requests": 25,
            "price_per_1k_prompt_tokens": 1.0,
        }
    )
    repo = PipelineRepo.create(tmp_path / "repo", params)
    del repo.env[TEST_KEY_ENV]
    repo.repro("render")

    before = _plan(repo)
    assert before["molecules"].strip() == "60" and before["already cached"].strip() == "0"
    assert before["would be sent"].strip() == "60" and before["sent within budget"].strip() == "25"
    assert int(before["est. prompt tokens"]) > 60 * 85  # text plus a low-detail picture each
    assert float(before["est. cost (max)"].strip().lstrip("$")) > 0
    assert llm_server.chat_hits == 0

    params["describe"]["max_requests"] = None
    repo.write_params(params)
    repo.env[TEST_KEY_ENV] = api_key
    repo.run("gallon", "describe")
    assert llm_server.chat_hits == 60
    del repo.env[TEST_KEY_ENV]

    after = _plan(repo)
    assert after["already cached"].strip() == "60" and after["would be sent"].strip() == "0"
    assert float(after["est. cost (max)"].strip().lstrip("$")) == 0
    assert llm_server.chat_hits == 60
