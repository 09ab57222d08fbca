"""The `gallon` command: every DVC stage is `gallon <stage>`, plus the user commands.

dvc.yaml calls these same commands, so a stage run by hand and a stage run by DVC are one
code path.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from pipeline.errors import GallonError

STAGES = {
    "prepare": "read the dataset, reject bad rows, de-duplicate and split",
    "render": "draw one PNG per molecule",
    "describe": "ask the describe provider about each molecule (cached)",
    "embed": "turn each description into a vector (cached)",
    "teacher": "train the GNN teacher per seed",
    "distill": "train the LLM-prior head, the plain MLP and the distilled MLP per seed",
    "evaluate": "score the four models; metrics, results table and plots",
}

app = typer.Typer(
    help="GALLON: LLM and GNN knowledge distilled into an MLP, as a DVC pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="params file to read")


def run_reporting_errors(action, *args) -> None:
    """User-facing errors become one line on stderr and exit code 2, not a traceback."""
    try:
        action(*args)
    except GallonError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


def _stage_command(name: str):
    def command(params_file: Path = PARAMS_OPTION) -> None:
        run_reporting_errors(importlib.import_module(f"stages.{name}").main, params_file)

    return command


for _name, _help in STAGES.items():
    app.command(_name, help=_help)(_stage_command(_name))

app.command("predict", help="score SMILES with the trained student alone (no GNN, no LLM, no network)")(
    importlib.import_module("stages.predict").command
)


@app.command("plan", help="what `gallon describe` would send and cost, and how much is cached; sends nothing")
def plan(params_file: Path = PARAMS_OPTION) -> None:
    """The describe plan; needs no API key, so it is safe to run before deciding to pay."""
    run_reporting_errors(importlib.import_module("stages.describe").print_plan, params_file)


app.add_typer(importlib.import_module("stages.cache").app, name="cache")
