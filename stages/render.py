"""render: one PNG per molecule, named by a hash of its key, and an index of what was drawn."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.artifacts import read_molecules, stage_dir, write_json, write_parquet
from pipeline.params import load_params
from pipeline.render import render_molecules


def main(params_file: Path = Path("params.yaml")) -> None:
    params = load_params(params_file)
    molecules = read_molecules()
    out = stage_dir("render")
    index = render_molecules(
        molecules["key"].tolist(),
        molecules["smiles"].tolist(),
        out / "images",
        params.render.size,
        params.render.workers,
    )
    write_parquet(out / "index.parquet", index)
    failed = index["status"] != "ok"
    summary = {
        "molecules_in": len(molecules),
        "rendered": int((index["status"] == "ok").sum()),
        "failed": int(failed.sum()),
        "failed_by_reason": dict(Counter(index.loc[failed, "error"].str.split(":").str[0])),
        "size": params.render.size,
    }
    write_json(out / "summary.json", summary)
    print(f"render: {summary}", file=sys.stderr)
