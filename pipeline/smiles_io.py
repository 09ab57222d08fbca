"""SMILES in and predictions out, as streams of chunks: arguments, CSV or parquet in; CSV, parquet or stdout out.

Files are never read or written whole, so `gallon predict` runs in bounded memory on any
input size; an output file appears under its name only once it is complete.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.errors import GallonError


class TableError(GallonError):
    """An input or output file that cannot be used as asked."""


@dataclass
class Source:
    """SMILES to score, as chunks, with the total when it is known up front (for the progress bar)."""

    chunks: Iterator[list[object]]
    total: int | None


def _count_csv_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    with open(path, "rb") as handle:
        handle.seek(max(os.path.getsize(path) - 1, 0))
        unterminated = handle.read(1) not in (b"\n", b"")
    return max(lines + unterminated - 1, 0)


def _csv_chunks(path: Path, column: str, size: int) -> Iterator[list[object]]:
    options = pacsv.ReadOptions(block_size=1 << 22)
    convert = pacsv.ConvertOptions(
        include_columns=[column], column_types={column: pa.string()}, strings_can_be_null=True
    )
    try:
        reader = pacsv.open_csv(path, read_options=options, convert_options=convert)
        for batch in reader:
            values = batch.column(0).to_pylist()
            for start in range(0, len(values), size):
                yield values[start : start + size]
    except (pa.ArrowInvalid, KeyError) as error:
        raise TableError(
            f"cannot read column {column!r} of {path} as CSV ({error}); name the SMILES column with --smiles-column"
        ) from None


def _parquet_chunks(file: pq.ParquetFile, column: str, size: int) -> Iterator[list[object]]:
    for batch in file.iter_batches(batch_size=size, columns=[column]):
        yield batch.column(0).to_pylist()


def open_source(smiles: list[str] | None, path: Path | None, column: str, chunk_size: int) -> Source:
    """SMILES given directly, or a .csv / .parquet file's `column`, streamed in chunks."""
    if (path is None) == (not smiles):
        raise TableError("give SMILES as arguments or --input FILE (CSV or parquet), not both and not neither")
    if path is None:
        return Source(
            iter([list(smiles[start : start + chunk_size]) for start in range(0, len(smiles), chunk_size)]), len(smiles)
        )
    if not path.is_file():
        raise TableError(f"input file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise TableError(f"{path} is not a readable parquet file ({error})") from None
        if column not in file.schema_arrow.names:
            raise TableError(
                f"{path} has no column {column!r}; its columns are {file.schema_arrow.names[:20]}: "
                "name the SMILES column with --smiles-column"
            )
        return Source(_parquet_chunks(file, column, chunk_size), file.metadata.num_rows)
    if path.suffix.lower() == ".csv":
        return Source(_csv_chunks(path, column, chunk_size), _count_csv_rows(path))
    raise TableError(f"cannot tell the format of {path}: use a .csv or .parquet file")


class Sink:
    """Writes chunks to .csv, .parquet or CSV on stdout; a file appears under its name only once complete."""

    def __init__(self, path: Path | None, schema: pa.Schema, stdout: TextIO | None = None) -> None:
        self.path, self.schema, self.stdout = path, schema, stdout
        if path is not None and path.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise TableError(f"cannot tell the output format of {path}: name it .csv or .parquet")
        self.partial = None if path is None else path.with_name(f".{path.name}.partial")
        self._parquet: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            frame.to_csv(self.stdout or sys.stdout, header=self._rows == 0, index=False)
        elif self.path.suffix.lower() == ".csv":
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(self.partial, mode="w" if self._rows == 0 else "a", header=self._rows == 0, index=False)
        else:
            if self._parquet is None:
                self.partial.parent.mkdir(parents=True, exist_ok=True)
                self._parquet = pq.ParquetWriter(self.partial, self.schema)
            self._parquet.write_table(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        self._rows += len(frame)

    def close(self) -> None:
        """Finish the file (a header-only one when nothing was scored) and move it into place."""
        if self._rows == 0:
            if self.path is not None and self.path.suffix.lower() != ".csv":
                self._parquet = pq.ParquetWriter(self.partial, self.schema)
            else:
                self.write(pd.DataFrame(columns=self.schema.names))
        if self._parquet is not None:
            self._parquet.close()
        if self.partial is not None:
            os.replace(self.partial, self.path)
