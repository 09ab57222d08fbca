"""End to end: `dvc repro` in a fresh repository on real molecules with the offline providers."""

import json
import shutil

import pandas as pd
import pytest

from tests.conftest import PROJECT
from tests.pipeline_repo import GIT_IDENTITY, PipelineRepo, small_params

ALL_STAGES = ["prepare", "render", "describe", "embed", "teacher", "distill", "evaluate"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The first run, committed (with the project's .gitignore) as a person would; later tests change the tree."""
    repo = PipelineRepo.create(tmp_path_factory.mktemp("e2e") / "repo", small_params(), env=GIT_IDENTITY)
    assert sorted(repo.repro()) == sorted(ALL_STAGES)
    shutil.copy(PROJECT / ".gitignore", repo.root / ".gitignore")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "first run")
    return repo


def test_first_run_writes_every_output(repo):
    root = repo.root / "artifacts"
    molecules = pd.read_parquet(root / "prepare" / "molecules.parquet")
    assert len(molecules) == 60 and set(molecules["split"]) == {"train", "valid", "test"}
    assert len(list((root / "render" / "images").glob("*.png"))) == 60
    descriptions = pd.read_parquet(root / "describe" / "descriptions.parquet")
    assert descriptions["description"].str.contains("RDKit").all()
    metrics = json.loads((root / "evaluate" / "metrics.json").read_text())
    assert set(metrics) == {"plain_mlp", "llm_prior", "gnn_teacher", "distilled_mlp"}
    for entry in metrics.values():
        assert 0.0 <= entry["test_roc_auc"] <= 1.0 and entry["seeds"] == 2
    table = (root / "evaluate" / "results.md").read_text()
    assert "distilled MLP" in table and "+-" in table
    shown = repo.run("dvc", "metrics", "show").stdout
    assert "test_roc_auc" in shown and "distilled_mlp" in shown


def test_second_run_runs_nothing(repo):
    assert repo.repro() == []
    assert "up to date" in repo.run("dvc", "status").stdout


def test_a_fresh_clone_reproduces_the_committed_lock(repo, tmp_path):
    """Hashed outputs hold no run record (wall time...), so a clone's `dvc repro` leaves dvc.lock as committed."""
    repo.run("git", "clone", "-q", str(repo.root), str(tmp_path / "clone"))
    clone = PipelineRepo(tmp_path / "clone", repo.env)
    assert sorted(clone.repro()) == sorted(ALL_STAGES)
    assert clone.run("git", "status", "--porcelain").stdout == "", clone.run("git", "diff").stdout


def test_distill_params_rerun_only_distill_and_evaluate(repo):
    params = repo.params()
    params["distill"]["alpha"] = 0.5
    repo.write_params(params)
    assert sorted(repo.repro()) == ["distill", "evaluate"]


def test_same_params_give_the_same_numbers(repo):
    before = (repo.root / "artifacts" / "evaluate" / "metrics.json").read_text()
    repo.run("dvc", "repro", "--force", "teacher", "distill", "evaluate")
    assert (repo.root / "artifacts" / "evaluate" / "metrics.json").read_text() == before


def test_swapping_the_describe_provider_reruns_from_describe_and_back_costs_nothing(repo, llm_server, api_key):
    repo.env["GALLON_TEST_API_KEY"] = api_key
    params = repo.params()
    offline = dict(params["describe"])
    server = {
        "provider": "openai",
        "model": "test-vision-model",
        "base_url": llm_server.url,
        "api_key_env": "GALLON_TEST_API_KEY",
    }
    repo.write_params({**params, "describe": {**offline, **server}})
    assert sorted(repo.repro()) == ["describe", "distill", "embed", "evaluate"]
    assert llm_server.chat_hits == 60

    repo.write_params({**params, "describe": offline})
    repo.repro()
    repo.write_params({**params, "describe": {**offline, **server}})
    repo.repro()
    assert llm_server.chat_hits == 60  # X -> Y -> X: every answer came from the cache

    written = [path for path in repo.root.rglob("*") if path.is_file() and ".git" not in path.parts]
    assert not [path for path in written if api_key.encode() in path.read_bytes()]
