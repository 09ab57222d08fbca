"""`gallon cache ...`: inspect, check, compact, export and share the LLM and embedding caches.

Both stores (describe/ and embed/ under one root) are covered by every command, because a
team shares the whole cache folder through DVC as one `artifacts/cache.dvc` (docs/CACHE.md).
"""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer

from pipeline.cache import DESCRIBE_SCHEMA, EMBED_SCHEMA, ShardStore
from pipeline.errors import GallonError

DEFAULT_ROOT = Path("artifacts/cache")
SCHEMAS: dict[str, pa.Schema] = {"describe": DESCRIBE_SCHEMA, "embed": EMBED_SCHEMA}

app = typer.Typer(help="inspect, check, compact, export and share the LLM and embedding caches", no_args_is_help=True)

ROOT_OPTION = typer.Option("--root", help="cache folder holding describe/ and embed/")


class Store(StrEnum):
    describe = "describe"
    embed = "embed"


class CacheNotShareable(GallonError):
    """The cache has corrupt shards or half-written files; sharing them would spread the damage."""


def stores(root: Path) -> dict[str, ShardStore]:
    return {name: ShardStore(root / name, schema) for name, schema in SCHEMAS.items()}


def _report_errors(action, *args) -> None:
    from stages.cli import run_reporting_errors  # lazy: stages.cli imports this module

    run_reporting_errors(action, *args)


# -- commands ---------------------------------------------------------------------------------
@app.command()
def stats(root: Annotated[Path, ROOT_OPTION] = DEFAULT_ROOT) -> None:
    """Rows per provider/model, shards and bytes on disk, per store."""
    _report_errors(lambda: print(format_stats(root)))


@app.command()
def verify(root: Annotated[Path, ROOT_OPTION] = DEFAULT_ROOT) -> None:
    """Read every shard fully; exit 1 naming each corrupt or truncated shard."""
    text, ok = verify_text(root)
    print(text)
    if not ok:
        raise typer.Exit(1)


@app.command()
def compact(root: Annotated[Path, ROOT_OPTION] = DEFAULT_ROOT) -> None:
    """Merge each store's shards into one (no row is lost; shards written meanwhile are kept)."""

    def run() -> None:
        for name, store in stores(root).items():
            before = len(store.shard_paths())
            merged = store.compact()
            print(f"{name}: {before} shards -> {len(store.shard_paths())}" + (f" ({merged.name})" if merged else ""))

    _report_errors(run)


@app.command()
def export(
    output: Annotated[Path, typer.Argument(help="parquet file to write")],
    store: Annotated[Store, typer.Option(help="which store to export")] = Store.describe,
    root: Annotated[Path, ROOT_OPTION] = DEFAULT_ROOT,
) -> None:
    """One de-duplicated parquet file of a store, for duckdb, pandas or sharing outside DVC."""

    def run() -> None:
        source = stores(root)[store.value]
        source.export(output)
        print(f"{store.value}: {len(source.keys())} rows -> {output}")

    _report_errors(run)


@app.command()
def share(root: Annotated[Path, ROOT_OPTION] = DEFAULT_ROOT) -> None:
    """Check the cache, then `dvc add` it and `git add` its .dvc file, ready to commit and push."""
    _report_errors(share_cache, root)


# -- implementations --------------------------------------------------------------------------
def format_stats(root: Path) -> str:
    lines = []
    for name, store in stores(root).items():
        info = store.stats()
        lines.append(f"{name}: {info['rows']} rows in {info['shards']} shards, {info['bytes'] / 1e6:.2f} MB")
        lines += [f"  {model}: {rows}" for model, rows in sorted(info["rows_by_provider_model"].items())]
    return "\n".join(lines)


def verify_text(root: Path) -> tuple[str, bool]:
    """Each store's report, its lines prefixed by the store name, and whether every shard is readable."""
    lines, ok = [], True
    for name, store in stores(root).items():
        report = store.verify()
        ok = ok and report.ok
        lines += [f"{name}: {line}" for line in report.format().splitlines()]
    return "\n".join(lines), ok


def share_cache(root: Path) -> None:
    """`dvc add` the cache folder so the next `dvc push` uploads its new shards.

    Refuses a cache with corrupt shards or `.tmp-*` files (a run in progress, or one killed):
    once pushed, teammates would pull them too.
    """
    problems = []
    for name, store in stores(root).items():
        report = store.verify()
        problems += [f"{name}/{bad}" for bad in [p.name for p in report.problems] + report.stale_temp_files]
    if problems:
        raise CacheNotShareable(
            f"not sharing {root}: {', '.join(problems)} (see `gallon cache verify`); wait for a running "
            "describe/embed to finish, delete stale `.tmp-*` files and corrupt shards, then share again"
        )
    _run("dvc", "add", str(root))
    _run("git", "add", f"{root}.dvc")
    print(
        f"{root} is tracked by {root}.dvc (staged). Next:\n  git commit -m 'cache: new answers' && dvc push && git push"
    )


def _run(*command: str) -> None:
    """Run git, or the dvc of this Python environment (which may not be on PATH)."""
    argv = [sys.executable, "-m", "dvc", *command[1:]] if command[0] == "dvc" else list(command)
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise GallonError(f"`{' '.join(command)}` failed:\n{(result.stderr or result.stdout).strip()}")
