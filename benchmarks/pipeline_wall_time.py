"""Wall time of `dvc repro` per stage on real MoleculeNet sets, in a fresh temporary repository.

Usage: GALLON_DATA_DIR=../shared/data/moleculenet python -m benchmarks.pipeline_wall_time bace [bbbp ...]
Prints a markdown table (stage seconds, total, metrics) to paste into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tests.pipeline_repo import PipelineRepo, merged

STAGES = ["prepare", "render", "describe", "embed", "teacher", "distill", "evaluate"]


def run_dataset(name: str, workdir: Path, overrides: dict) -> dict:
    base = PipelineRepo.project_params()
    repo = PipelineRepo.create(workdir / name, merged(base, {"dataset": {"name": name}, **overrides}))
    timings = {}
    for stage in STAGES:
        start = time.perf_counter()
        repo.run("dvc", "repro", "--single-item", stage)
        timings[stage] = time.perf_counter() - start
    second_run = repo.repro()
    artifacts = repo.root / "artifacts"
    return {
        "dataset": name,
        "seconds": timings,
        "total": sum(timings.values()),
        "second_run_stages": second_run,
        "prepare": json.loads((artifacts / "prepare" / "summary.json").read_text()),
        "metrics": json.loads((artifacts / "evaluate" / "metrics.json").read_text()),
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| dataset | " + " | ".join(STAGES) + " | total | rejected rows | test metric (distilled MLP) |",
        "|---" * (len(STAGES) + 4) + "|",
    ]
    for result in results:
        rejected = sum(result["prepare"]["rejected_by_reason"].values())
        metric = next(
            key for key in result["metrics"]["distilled_mlp"] if key.startswith("test_") and not key.endswith("_std")
        )
        value = result["metrics"]["distilled_mlp"][metric]
        cells = [f"{result['seconds'][stage]:.0f} s" for stage in STAGES]
        lines.append(
            f"| {result['dataset']} | "
            + " | ".join(cells)
            + f" | **{result['total']:.0f} s** | {rejected} | {metric} {value:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--keep", type=Path, help="keep the repositories under this folder")
    args = parser.parse_args()
    if not os.environ.get("GALLON_DATA_DIR"):
        print("note: GALLON_DATA_DIR is not set; the data will be downloaded")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="gallon-bench-"))
    results = []
    for name in args.datasets:
        result = run_dataset(name, workdir, {})
        results.append(result)
        print(json.dumps({key: result[key] for key in ("dataset", "seconds", "total", "second_run_stages")}))
    print(markdown(results))


if __name__ == "__main__":
    main()
