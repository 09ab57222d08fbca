"""describe: one prompt per molecule to the provider in params; answers land in the shared cache first."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.artifacts import (
    ROOT,
    ArtifactError,
    read_molecules,
    read_parquet,
    read_task,
    stage_dir,
    write_json,
    write_parquet,
)
from pipeline.cache import ShardStore
from pipeline.chem import molecules_from_keys
from pipeline.describe import DescribePlan, describe_molecules, plan_describe
from pipeline.params import load_params
from pipeline.prompts import PROMPT_TEMPLATE_VERSION, build_prompt
from pipeline.providers import make_describer
from pipeline.providers.base import DescribeRequest

CACHE = ROOT / "cache" / "describe"


def build_requests(params_file: Path) -> list[DescribeRequest]:
    """Exactly what would be sent for each molecule: prompt text and, when asked for, the picture."""
    settings = load_params(params_file).describe
    task, molecules = read_task(), read_molecules()
    images = {}
    if settings.image:
        index = read_parquet(ROOT / "render" / "index.parquet", "render")
        images = dict(zip(index["molecule_key"], index["image"], strict=True))
    requests = []
    smiles_column = molecules["smiles"].tolist()
    for key, smiles, mol in zip(molecules["key"], smiles_column, molecules_from_keys(smiles_column), strict=True):
        prompt = build_prompt(
            smiles,
            mol,
            task.dataset,
            task.tasks,
            task.task_type,
            include_bonds=settings.bond_list,
            include_image=settings.image,
        )
        requests.append(
            DescribeRequest(
                molecule_key=key,
                smiles=smiles,
                prompt=prompt,
                image_png=_picture(images.get(key)) if settings.image else None,
            )
        )
    return requests


def _picture(image_name: object) -> bytes | None:
    """The PNG render drew; None where it could not draw the molecule (the runner records that)."""
    if not isinstance(image_name, str):
        return None
    path = ROOT / "render" / "images" / image_name
    if not path.is_file():
        raise ArtifactError(
            f"{path} is listed in artifacts/render/index.parquet but missing; "
            "rebuild it with `dvc repro render` (or `gallon render`)"
        )
    return path.read_bytes()


def main(params_file: Path = Path("params.yaml")) -> None:
    settings = load_params(params_file).describe
    requests = build_requests(params_file)
    provider = make_describer(settings)
    outcome = describe_molecules(requests, provider, settings, ShardStore(CACHE), PROMPT_TEMPLATE_VERSION)
    out = stage_dir("describe")
    # What this run did (cached / asked) goes to the summary only: the table stays the same whether the
    # answers were bought now or came from the cache, so DVC does not re-run what follows for nothing.
    write_parquet(out / "descriptions.parquet", outcome.table.drop(columns=["status"]))
    write_json(out / "summary.json", outcome.summary)
    print(f"describe: {outcome.summary} in {outcome.wall_s:.1f} s", file=sys.stderr)


def plan(params_file: Path = Path("params.yaml")) -> DescribePlan:
    """What `main` would send and cost: the same requests and cache, but no provider (so no API key)."""
    settings = load_params(params_file).describe
    return plan_describe(build_requests(params_file), settings, ShardStore(CACHE), PROMPT_TEMPLATE_VERSION)


def print_plan(params_file: Path = Path("params.yaml")) -> None:
    print(plan(params_file).format())
