"""predict: score new molecules with a trained student checkpoint; a user command, not a DVC stage.

Heavy imports (torch, RDKit) wait until the command runs, so `gallon --help` stays quick.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CHECKPOINT = Path("artifacts/distill/seed_0/distilled_mlp.pt")


def command(
    smiles: Annotated[
        list[str] | None, typer.Argument(help="SMILES to score (or use --input)", show_default=False)
    ] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", "-i", help="CSV or parquet file with a SMILES column")
    ] = None,
    smiles_column: Annotated[str, typer.Option(help="the SMILES column of --input")] = "smiles",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=".csv or .parquet file; default: CSV on stdout")
    ] = None,
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", help="student checkpoint (.pt)")
    ] = DEFAULT_CHECKPOINT,
    chunk_size: Annotated[int, typer.Option(min=1, help="molecules per chunk (bounds memory)")] = 2_000,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
    workers: Annotated[int, typer.Option(min=1, help="processes parsing and featurising (1 = this one)")] = 1,
) -> None:
    """Predict with the student alone: RDKit featurisation and an MLP, no GNN, no LLM, no network."""
    from stages.cli import run_reporting_errors

    run_reporting_errors(main, smiles, input_path, smiles_column, output, checkpoint, chunk_size, progress, workers)


def main(
    smiles: list[str] | None,
    input_path: Path | None,
    smiles_column: str,
    output: Path | None,
    checkpoint: Path,
    chunk_size: int,
    progress: bool,
    workers: int = 1,
) -> None:
    from pipeline.predict import StudentPredictor, predict_smiles
    from pipeline.smiles_io import Sink, open_source

    predictor = StudentPredictor(checkpoint)
    if predictor.rdkit_warning:
        print(f"warning: {predictor.rdkit_warning}", file=sys.stderr)
    source = open_source(smiles, input_path, smiles_column, chunk_size)
    summary = predict_smiles(predictor, source, Sink(output, predictor.schema()), progress, workers)
    print(
        f"predict: {summary.molecules} molecules, {summary.invalid} invalid, {summary.rate:,.0f} mol/s"
        + (f" -> {output}" if output else ""),
        file=sys.stderr,
    )
