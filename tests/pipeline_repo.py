"""A throwaway git + DVC repository holding this project's pipeline, for end-to-end tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT, SMALL_CSV

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


class PipelineRepo:
    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1",  # else `dvc init` starts its analytics reporter before the config says no
            **(env or {}),
        }

    @classmethod
    def create(cls, root: Path, params: dict, env: dict[str, str] | None = None) -> PipelineRepo:
        root.mkdir(parents=True, exist_ok=True)
        for name in ("pipeline", "stages"):
            shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
        (root / "data").mkdir()
        shutil.copy(SMALL_CSV, root / "data" / SMALL_CSV.name)
        repo = cls(root, env)
        repo.write_params(params)
        repo.run("git", "init", "-q")
        repo.run("dvc", "init", "-q")
        repo.run("dvc", "config", "core.analytics", "false")
        return repo

    @staticmethod
    def project_params() -> dict:
        return yaml.safe_load((PROJECT / "params.yaml").read_text())

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def repro(self, *args: str) -> list[str]:
        """Run `dvc repro`; returns the names of the stages that actually ran."""
        result = self.run("dvc", "repro", *args)
        return re.findall(r"Running stage '([^']+)'", result.stdout + result.stderr)


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` laid over it, section by section (nested mappings merge)."""
    result = dict(base)
    for key, value in overrides.items():
        result[key] = (
            merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


def small_params(**overrides: dict) -> dict:
    """The project's params.yaml made fast, on the hand-written 60-molecule CSV."""
    fast = {
        "dataset": {
            "name": "csv",
            "csv": {
                "path": f"data/{SMALL_CSV.name}",
                "smiles_column": "smiles",
                "target_columns": ["active"],
                "task_type": "classification",
            },
        },
        "split": {"method": "random", "train": 0.6, "valid": 0.2, "seed": 0},
        "render": {"size": 128, "workers": 1},
        "train": {"seeds": [0, 1], "epochs": 15, "patience": 10},
    }
    return merged(merged(PipelineRepo.project_params(), fast), overrides)
