"""Params cannot point the pipeline at non-HTTP endpoints, leak a pasted key, or write outside `artifacts/`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.params import parse_params
from stages.cli import app

REFUSED_URLS = ["file:///etc/passwd", "ftp://example.com/v1", "javascript:alert(1)", "localhost:8000/v1", "http://"]


def _gallon(stage: str, params: dict) -> tuple[int, str]:
    Path("params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, [stage])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("section", ["describe", "embed"])
@pytest.mark.parametrize("url", REFUSED_URLS)
def test_base_urls_other_than_http_are_refused(tmp_path, monkeypatch, section, url):
    monkeypatch.chdir(tmp_path)
    code, stderr = _gallon(section, {section: {"provider": "openai", "base_url": url}})
    assert code == 2 and "Traceback" not in stderr
    assert f"{section}.base_url: Value error, base_url must be an http:// or https:// URL with a host" in stderr


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "HTTPS://api.example.com/v1"])
def test_http_urls_are_accepted(url):
    assert parse_params({"describe": {"base_url": url}}).describe.base_url == url


def test_a_key_pasted_as_the_variable_name_is_refused_without_echoing_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secret = "sk-proj-PASTED-BY-MISTAKE-12345"
    code, stderr = _gallon("describe", {"describe": {"provider": "openai", "api_key_env": secret}})
    assert code == 2 and "describe.api_key_env: Value error, must be the name of an environment variable" in stderr
    assert secret not in stderr


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def test_prepare_writes_only_under_artifacts_whatever_names_and_paths_hold(tmp_path, monkeypatch):
    sandbox = tmp_path / "sandbox"
    repo = sandbox / "deep" / "repo"
    (repo / "data").mkdir(parents=True)
    column = "../../etc/passwd"
    smiles = ["CCO", "c1ccccc1", "CCN", "c1ccncc1", "CC(=O)O", "CCCl", "CCOCC", "CC#N", "C1CCCCC1", "CCC"]
    frame = pd.DataFrame({"smiles": smiles, column: [index % 2 for index in range(10)]})
    frame.to_csv(repo / "data" / "rows.csv", index=False)
    (sandbox / "elsewhere").mkdir()
    frame.to_csv(sandbox / "elsewhere" / "rows.csv", index=False)
    monkeypatch.chdir(repo)
    csv = {"target_columns": [column], "task_type": "classification"}

    code, stderr = _gallon("prepare", {"dataset": {"name": "../../etc"}})
    assert code == 2 and "unknown dataset '../../etc'" in stderr
    for path in ("../../elsewhere/rows.csv", "data/../../elsewhere/rows.csv", "/etc/passwd"):
        code, stderr = _gallon("prepare", {"dataset": {"name": "csv", "csv": {**csv, "path": path}}})
        assert code == 2 and "dataset.csv.path: Value error, put the CSV in the project's data/ folder" in stderr

    before = _files(sandbox)
    params = {"dataset": {"name": "csv", "csv": {**csv, "path": "data/rows.csv"}}, "split": {"method": "random"}}
    code, stderr = _gallon("prepare", params)
    assert code == 0, stderr
    written = _files(sandbox) - before
    assert written == {
        Path("deep/repo/artifacts/prepare") / name
        for name in ("molecules.parquet", "rejected.csv", "conflicts.csv", "summary.json")
    }
