"""Parquet shard store for paid-for LLM answers and embeddings.

Why shards: every answer costs money, so rows are written as they arrive into small,
immutable, uniquely named parquet files (temp file + `os.replace`, so a reader never sees a
half-written shard). Two people's caches combine by copying files into one folder; readers
take the union and de-duplicate by `key`. Nothing is ever appended in place, so there is no
file that two writers (or two git/DVC clones) could both change.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import GallonError

SHARD_PREFIX = "part-"
SHARD_SUFFIX = ".parquet"
TMP_PREFIX = ".tmp-"
READ_THREADS = 8
# low-cardinality columns; long texts compress better without a dictionary
DICTIONARY_COLUMNS = ["provider", "model", "prompt_template_version", "finish_reason"]
# what pyarrow raises for truncated or garbage files (ArrowIOError is an OSError)
READ_ERRORS = (pa.ArrowException, OSError, ValueError)

DESCRIBE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        pa.field("prompt_template_version", pa.string()),
        pa.field("prompt_hash", pa.string()),
        pa.field("image_hash", pa.string()),
        pa.field("prompt", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("latency_s", pa.float64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ]
)

EMBED_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        pa.field("text_hash", pa.string()),
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


class CorruptShardError(GallonError):
    """A shard cannot be read; reading it as empty would silently pay for its answers again."""


@dataclass(frozen=True)
class ShardProblem:
    name: str
    error: str


@dataclass(frozen=True)
class VerifyReport:
    shards_ok: int
    rows: int
    problems: list[ShardProblem] = field(default_factory=list)
    stale_temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """What `gallon cache verify` prints."""
        lines = [f"{self.shards_ok} shards readable, {self.rows} rows"]
        lines += [f"CORRUPT {problem.name}: {problem.error}" for problem in self.problems]
        lines += [f"stale temp file (safe to delete) {name}" for name in self.stale_temp_files]
        if self.problems:
            lines.append("delete corrupt shards (their answers are asked again) or restore them with `dvc checkout`")
        return "\n".join(lines)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _fix_hint(root: Path) -> str:
    return (
        f"run `gallon cache verify` on {root} to list bad shards, then delete them "
        "(their answers will be asked again) or restore them with `dvc pull` / `dvc checkout`"
    )


class ShardStore:
    """One cache folder: `part-*.parquet` shards, read as a de-duplicated union by `key`."""

    def __init__(self, root: Path | str, schema: pa.Schema | None = None) -> None:
        self.root = Path(root)
        self.schema = schema
        self._tables: dict[tuple[str, tuple[str, ...] | None], tuple[tuple[int, int], pa.Table]] = {}
        self._index: tuple[tuple, list[Path], set[str], list[list[str]], list[list[bool] | None]] | None = None

    # -- reading -------------------------------------------------------------------------
    def shard_paths(self) -> list[Path]:
        """Shards in name order (names start with a UTC timestamp, so oldest first)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p for p in self.root.iterdir() if p.name.startswith(SHARD_PREFIX) and p.name.endswith(SHARD_SUFFIX)
        )

    def _read_shard(self, path: Path, columns: tuple[str, ...] | None) -> pa.Table:
        """One shard (only `columns`), memoised while its size and mtime are unchanged."""
        stat = path.stat()
        signature = (stat.st_size, stat.st_mtime_ns)
        cached = self._tables.get((path.name, columns))
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            table = pq.read_table(path, columns=list(columns) if columns else None)
        except READ_ERRORS as error:
            raise CorruptShardError(
                f"cache shard {path} is corrupt or truncated ({error}); {_fix_hint(self.root)}"
            ) from None
        if "key" not in table.column_names:
            raise CorruptShardError(f"cache shard {path} has no 'key' column; {_fix_hint(self.root)}")
        self._tables[(path.name, columns)] = (signature, table)
        return table

    def _read_shards(self, paths: list[Path], columns: tuple[str, ...] | None) -> list[pa.Table]:
        """Several shards at once: parquet decoding releases the GIL, so threads overlap it."""
        if len(paths) <= 1:
            return [self._read_shard(path, columns) for path in paths]
        with ThreadPoolExecutor(min(READ_THREADS, len(paths))) as pool:
            return list(pool.map(lambda path: self._read_shard(path, columns), paths))

    def _key_index(self) -> tuple[list[Path], set[str], list[list[str]], list[list[bool] | None]]:
        """Shards, the union of their keys, each shard's keys, and which rows win a duplicate key.

        The first shard by name wins; the winners list is None when every row of its shard wins (the usual case).
        """
        paths = self.shard_paths()
        signature = tuple((p.name, p.stat().st_size) for p in paths)
        if self._index is not None and self._index[0] == signature:
            return self._index[1:]
        live = {p.name for p in paths}
        self._tables = {name: value for name, value in self._tables.items() if name[0] in live}
        seen: set[str] = set()
        shard_keys: list[list[str]] = []
        winners: list[list[bool] | None] = []
        for key_table in self._read_shards(paths, ("key",)):
            keys = key_table.column("key").to_pylist()
            shard_keys.append(keys)
            fresh = set(keys) - seen
            if len(fresh) == len(keys):
                winners.append(None)
            else:
                first = {}
                for row, key in enumerate(keys):
                    if key in fresh:
                        first.setdefault(key, row)
                winning_rows = set(first.values())
                winners.append([row in winning_rows for row in range(len(keys))])
            seen |= fresh
        self._index = (signature, paths, seen, shard_keys, winners)
        return paths, seen, shard_keys, winners

    def keys(self) -> set[str]:
        return set(self._key_index()[1])

    def lookup_table(self, keys: Iterable[str], columns: Iterable[str] | None = None) -> pa.Table:
        """Rows for the cached subset of `keys` (missing keys are absent), reading only `columns`.

        Columnar and fast: pass `columns` to skip large ones (e.g. `prompt`) when they are not needed.
        """
        paths, _, shard_keys, winners = self._key_index()
        wanted_columns = tuple(dict.fromkeys(["key", *columns])) if columns is not None else None
        wanted = keys if isinstance(keys, set | frozenset | dict) else set(keys)
        selections = []
        for path, keys_here, winner in zip(paths, shard_keys, winners, strict=True):
            mask = [key in wanted for key in keys_here]
            if winner is not None:
                mask = [chosen and first for chosen, first in zip(mask, winner, strict=True)]
            if any(mask):
                selections.append((path, mask))
        tables = self._read_shards([path for path, _ in selections], wanted_columns)
        parts = [
            table if all(mask) else table.filter(pa.array(mask, type=pa.bool_()))
            for table, (_, mask) in zip(tables, selections, strict=True)
        ]
        if not parts:
            known = self.schema or pa.schema([])
            names = wanted_columns or known.names or ["key"]
            return pa.schema(
                [known.field(n) if n in known.names else pa.field(n, pa.string()) for n in names]
            ).empty_table()
        return pa.concat_tables(parts, promote_options="permissive")

    def lookup(self, keys: Iterable[str], columns: Iterable[str] | None = None) -> dict[str, dict]:
        """Cache key -> row (a dict of `columns`, default all) for every cached key among `keys`."""
        found = self.lookup_table(keys, columns)
        names = found.column_names
        values = [found.column(name).to_pylist() for name in names]  # column-wise: ~5x faster than rows
        return {row[0]: dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)}

    def table(self, columns: Iterable[str] | None = None) -> pa.Table:
        """The whole cache as one de-duplicated arrow table."""
        return self.lookup_table(self._key_index()[1], columns)

    # -- writing -------------------------------------------------------------------------
    def writer(
        self, flush_every: int = 50, flush_seconds: float = 10.0, schema: pa.Schema | None = None
    ) -> ShardWriter:
        """A buffered shard writer; rows are cast to `schema` (default: the store's; else inferred)."""
        return ShardWriter(self, flush_every, flush_seconds, schema or self.schema)

    def write_shard(self, table: pa.Table) -> Path:
        """Write one new immutable shard atomically; returns its final path."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
        final = self.root / f"{SHARD_PREFIX}{stamp}-{uuid.uuid4().hex}{SHARD_SUFFIX}"
        temp = self.root / f"{TMP_PREFIX}{final.name}"
        try:
            pq.write_table(table, temp, compression="zstd", use_dictionary=DICTIONARY_COLUMNS)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        return final

    # -- maintenance ---------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Read every shard fully; report each unreadable one by name instead of stopping at the first."""
        problems: list[ShardProblem] = []
        rows = 0
        paths = self.shard_paths()
        for path in paths:
            try:
                table = pq.read_table(path)
                if "key" not in table.column_names:
                    raise ValueError("no 'key' column")
                if table.column("key").null_count:
                    raise ValueError("null keys")
                rows += table.num_rows
            except READ_ERRORS as error:
                problems.append(ShardProblem(path.name, f"{type(error).__name__}: {error}"))
        stale = sorted(p.name for p in self.root.glob(f"{TMP_PREFIX}*")) if self.root.is_dir() else []
        return VerifyReport(shards_ok=len(paths) - len(problems), rows=rows, problems=problems, stale_temp_files=stale)

    def stats(self) -> dict:
        """Rows per provider/model, shard count and bytes on disk: what `gallon cache stats` prints."""
        paths = self.shard_paths()
        table = self.table(["provider", "model"])
        by_model: dict[str, int] = {}
        if table.num_rows and {"provider", "model"} <= set(table.column_names):
            grouped = table.group_by(["provider", "model"]).aggregate([("key", "count")])
            for provider, model, count in zip(
                *(grouped.column(c).to_pylist() for c in ("provider", "model", "key_count")), strict=True
            ):
                by_model[f"{provider}/{model}"] = count
        return {
            "root": str(self.root),
            "shards": len(paths),
            "bytes": sum(p.stat().st_size for p in paths),
            "rows": table.num_rows,
            "rows_by_provider_model": by_model,
        }

    def compact(self) -> Path | None:
        """Merge all current shards into one; new shard first, old ones removed after, so no row is lost.

        Shards written by someone else while this runs are not touched (only those read are removed).
        """
        paths = self.shard_paths()
        if len(paths) <= 1:
            return paths[0] if paths else None
        table = self.table()
        merged = self.write_shard(table)
        for path in paths:
            path.unlink(missing_ok=True)
        return merged

    def export(self, path: Path | str) -> Path:
        """One de-duplicated parquet file, written atomically (for sharing outside DVC or for duckdb)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{TMP_PREFIX}{path.name}")
        pq.write_table(self.table(), temp, compression="zstd")
        os.replace(temp, path)
        return path


class ShardWriter:
    """Buffers rows and writes a shard at least every `flush_every` rows or `flush_seconds` seconds.

    Used as a context manager: the buffer is flushed on normal exit, on exceptions, on Ctrl-C and,
    when entered from the main thread, on SIGTERM (turned into KeyboardInterrupt while open).
    Only rows not yet handed to `add` can be lost.
    """

    def __init__(self, store: ShardStore, flush_every: int, flush_seconds: float, schema: pa.Schema | None) -> None:
        if flush_every < 1 or flush_seconds <= 0:
            raise ValueError("flush_every must be >= 1 and flush_seconds > 0")
        self.store = store
        self.schema = schema
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        self.shards_written: list[Path] = []
        self._buffer: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._previous_sigterm: object = None

    def __enter__(self) -> Self:
        self._timer = threading.Thread(target=self._flush_periodically, name="cache-flush", daemon=True)
        self._timer.start()
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def add(self, row: dict) -> None:
        with self._lock:
            self._buffer.append(row)
            if len(self._buffer) >= self.flush_every:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join()
        self._timer = None
        try:
            self.flush()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        try:
            self.shards_written.append(self.store.write_shard(pa.Table.from_pylist(rows, schema=self.schema)))
        except BaseException:
            self._buffer = rows + self._buffer
            raise
        self.rows_written += len(rows)

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")
