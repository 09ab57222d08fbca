"""The MoleculeNet benchmark's bookkeeping: partial runs merge without losing results, the best
configuration is chosen on validation only, and the targets count what the issue asks."""

import argparse
import json
import threading
import time

import pytest

import benchmarks.moleculenet as moleculenet
from benchmarks.moleculenet import (
    CONFIGS,
    PARTS,
    best_config,
    check_chemprop_epochs,
    clear_outputs,
    locked,
    merge_results,
    record_run,
    results_markdown,
    targets_markdown,
)


def _rows(config: str, model: str, split: str, scores: dict[int, float]) -> list[dict]:
    return [{"config": config, "model": model, "seed": seed, "split": split, "score": s} for seed, s in scores.items()]


def _result(dataset: str, metric: str, rows: list[dict], **extra) -> dict:
    return {
        "dataset": dataset,
        "metric": metric,
        "split_sizes": {"train": 8, "valid": 1, "test": 1},
        "scores": rows,
        "timings_s": {},
        "chemprop_epochs": None,
        "machine": "test",
        **extra,
    }


def test_a_partial_run_replaces_only_its_own_part_and_seeds():
    saved = _result(
        "bace",
        "roc_auc",
        _rows("paper", "distilled_mlp", "test", {0: 0.7, 1: 0.8}) + _rows("chemprop", "chemprop", "test", {0: 0.5}),
        timings_s={"prepare": {"seconds": 3.0, "seeds": 2}},
        chemprop_epochs="default (50)",
    )
    new = _result("bace", "roc_auc", _rows("chemprop", "chemprop", "test", {0: 0.75, 1: 0.76}))
    merged = merge_results(saved, new)
    by_key = {(row["config"], row["seed"]): row["score"] for row in merged["scores"]}
    assert by_key == {("paper", 0): 0.7, ("paper", 1): 0.8, ("chemprop", 0): 0.75, ("chemprop", 1): 0.76}
    assert merged["timings_s"] == {"prepare": {"seconds": 3.0, "seeds": 2}}
    assert merged["chemprop_epochs"] == "default (50)"  # a run that did not say keeps what was recorded


def test_runs_side_by_side_keep_each_others_seeds(tmp_path):
    runs = [_result("lipo", "rmse", _rows("chemprop", "chemprop", "test", {seed: 0.7})) for seed in range(4)]
    writers = [threading.Thread(target=record_run, args=(run, tmp_path, tmp_path / "RESULTS.md")) for run in runs]
    with locked(tmp_path):  # flock: separate opens exclude each other, threads included
        for writer in writers:
            writer.start()
        time.sleep(0.5)
        assert not (tmp_path / "lipo.json").exists()  # every writer waits for the folder
    for writer in writers:
        writer.join(60)
    saved = json.loads((tmp_path / "lipo.json").read_text())
    assert sorted(row["seed"] for row in saved["scores"]) == [0, 1, 2, 3]
    seeds = " / ".join("0,1,2,3" if part == "chemprop" else "not run" for part in PARTS)
    assert f"| lipo | 8/1/1 | {seeds} |" in (tmp_path / "RESULTS.md").read_text()


def test_chemprop_seeds_with_other_epochs_are_refused_before_training(tmp_path):
    saved = _result("esol", "rmse", _rows("chemprop", "chemprop", "test", {0: 1.0, 1: 1.1}), chemprop_epochs="3")
    with pytest.raises(SystemExit, match=r"holds chemprop seeds 1 trained with 3 epochs; this run asks for default"):
        check_chemprop_epochs(saved, [0], None, tmp_path / "esol.json")
    check_chemprop_epochs(saved, [0, 1], None, tmp_path / "esol.json")  # every recorded seed replaced
    check_chemprop_epochs(saved, [2], 3, tmp_path / "esol.json")  # same setting
    check_chemprop_epochs(None, [0], 3, tmp_path / "esol.json")


def test_best_configuration_is_chosen_on_validation_not_test():
    rows = (
        _rows("paper", "distilled_mlp", "valid", {0: 0.9})
        + _rows("paper", "distilled_mlp", "test", {0: 0.6})
        + _rows("rich", "distilled_mlp", "valid", {0: 0.8})
        + _rows("rich", "distilled_mlp", "test", {0: 0.95})
    )
    assert best_config(_result("bace", "roc_auc", rows)) == "paper"
    assert best_config(_result("esol", "rmse", rows)) == "rich"  # RMSE: lower validation wins
    assert best_config(_result("esol", "rmse", [])) is None


def test_targets_count_a_dataset_only_when_every_rival_is_beaten_and_skip_missing_rows():
    def dataset(name: str, distilled: float, plain: float, teacher: float, chemprop: float | None) -> dict:
        rows = []
        for config in ("paper", "rich"):
            rows += _rows(config, "distilled_mlp", "valid", {0: 0.5 if config == "paper" else 0.4})
            rows += _rows(config, "distilled_mlp", "test", {0: distilled})
            rows += _rows(config, "plain_mlp", "test", {0: plain})
            rows += _rows(config, "gnn_teacher", "test", {0: teacher})
        if chemprop is not None:
            rows += _rows("chemprop", "chemprop", "test", {0: chemprop})
        return _result(name, "roc_auc", rows)

    results = [dataset("bace", 0.8, 0.7, 0.9, 0.6), dataset("bbbp", 0.8, 0.7, 0.75, None)]
    table = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in targets_markdown(results)[2:]}
    assert table["distilled MLP (paper) beats the plain MLP"] == ["2 of 2", "bace, bbbp |"]
    assert table["distilled MLP (paper) beats the GCN teacher"] == ["1 of 2", "bbbp |"]
    both = "**target:** distilled MLP (paper) beats both the plain MLP and the GCN teacher"
    assert table[both] == ["1 of 2", "bbbp |"]
    assert table["**target:** distilled MLP (best) beats chemprop's D-MPNN"] == ["1 of 1", "bace |"]
    report = results_markdown(results)
    assert "Not run for this file: clintox, hiv, esol, freesolv, lipo." in report
    seeds = " / ".join("0" if part in ("paper", "rich") else "not run" for part in PARTS)
    assert f"| bbbp | 8/1/1 | {seeds} | not run | paper |" in report
    assert "| chemprop D-MPNN | 60.0 (one seed) | - |" in report  # a single run shows no spread of 0


@pytest.mark.parametrize("keep_cache", [True, False])
def test_a_warm_run_keeps_the_cache_and_the_cold_run_times(tmp_path, keep_cache):
    for stage in ("cache/embed", "cache/describe", "prepare", "teacher"):
        (tmp_path / stage).mkdir(parents=True)
        (tmp_path / stage / "file").write_text("x")
    clear_outputs(tmp_path, keep_cache=keep_cache)
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("file"))
    assert left == (["cache/describe/file", "cache/embed/file"] if keep_cache else [])
    cold = _result("hiv", "roc_auc", [], timings_s={"embed": {"seconds": 4002.0, "seeds": 2}})
    # a warm run times no shared stage
    warm = _result("hiv", "roc_auc", _rows("paper", "distilled_mlp", "test", {2: 0.7}))
    assert merge_results(cold, warm)["timings_s"] == {"embed": {"seconds": 4002.0, "seeds": 2}}


@pytest.mark.parametrize("warm_cache", [False, True])
def test_configurations_with_the_same_teacher_train_it_once_per_run(tmp_path, monkeypatch, warm_cache):
    """The GCN-teacher configurations share one teacher run (same settings, same numbers); GINE trains its own.

    A warm-cache run times the model stages only: its describe and embed are served from the cache."""
    ran = []

    def fake_stage(stage: str, workspace):
        params = moleculenet.yaml.safe_load((workspace / "params.yaml").read_text())
        ran.append((stage, params["teacher"]["model"], params["distill"]["alpha"]))
        artifacts = workspace / "artifacts"
        (artifacts / "prepare").mkdir(parents=True, exist_ok=True)
        (artifacts / "prepare" / "summary.json").write_text(json.dumps({"split_sizes": {"train": 8}}))
        (artifacts / "evaluate").mkdir(exist_ok=True)
        (artifacts / "evaluate" / "scores.csv").write_text(
            "model,seed,split,task,score\ndistilled_mlp,0,test,mean,0.5\n"
        )
        return 1.0

    monkeypatch.setattr(moleculenet, "run_stage", fake_stage)
    options = argparse.Namespace(warm_cache=warm_cache)
    result = moleculenet.run_dataset("bace", [0], tmp_path, list(CONFIGS), options)
    teachers = [(model, alpha) for stage, model, alpha in ran if stage == "teacher"]
    assert teachers == [("gcn", 0.1), ("gine", 0.1)]
    assert [stage for stage, *_ in ran].count("distill") == len(CONFIGS)
    assert {row["config"] for row in result["scores"]} == set(CONFIGS)
    assert "strong: teacher" not in result["timings_s"] and "rich: teacher" in result["timings_s"]
    assert ("embed" in result["timings_s"]) is not warm_cache
