"""embed: description -> vector for every molecule, through the embedding cache."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pipeline.artifacts import ROOT, read_molecules, read_parquet, stage_dir, write_json
from pipeline.cache import ShardStore
from pipeline.embed import embed_texts
from pipeline.params import load_params
from pipeline.providers import make_embedder


def main(params_file: Path = Path("params.yaml")) -> None:
    settings = load_params(params_file).embed
    molecules = read_molecules()
    descriptions = read_parquet(ROOT / "describe" / "descriptions.parquet", "describe")
    text_of = dict(zip(descriptions["molecule_key"], descriptions["description"], strict=True))
    keys = molecules["key"].to_numpy(dtype=str)
    described = np.array([isinstance(text_of.get(key), str) and bool(text_of[key]) for key in keys])
    texts = [text_of[key] for key in keys[described]]
    vectors = embed_texts(texts, make_embedder(settings), ShardStore(ROOT / "cache" / "embed"), settings.batch_size)
    table = np.zeros((len(keys), vectors.shape[1] if len(texts) else 0), dtype=np.float32)
    table[described] = vectors
    out = stage_dir("embed")
    np.savez(out / "embeddings.npz", keys=keys, vectors=table, described=described)
    summary = {
        "molecules": len(keys),
        "embedded": int(described.sum()),
        "without_description": int((~described).sum()),
        "dim": int(table.shape[1]),
    }
    write_json(out / "summary.json", summary)
    print(f"embed: {summary}", file=sys.stderr)
