"""Two people share one LLM cache through git + a DVC remote, exactly as docs/CACHE.md tells them to.

Two clones of a bare git repo, a local-folder DVC remote, the `openai` provider pointed at the
loopback server: every paid request is counted, so the test asserts nobody pays twice.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipeline.cache import ShardStore
from tests.conftest import PROJECT, SMALL_CSV
from tests.llm_fixtures import TEST_KEY_ENV
from tests.llm_server import LLMServer
from tests.pipeline_repo import GIT_IDENTITY, PipelineRepo, small_params

DESCRIBE_CHAIN = ["prepare", "render", "describe"]


def _csv_lines() -> tuple[str, list[str]]:
    header, *rows = SMALL_CSV.read_text().splitlines()
    return header, rows


def _write_csv(repo: PipelineRepo, header: str, rows: list[str]) -> None:
    (repo.root / "data" / SMALL_CSV.name).write_text("\n".join([header, *rows]) + "\n")


def _read_csv_rows(repo: PipelineRepo) -> list[str]:
    return (repo.root / "data" / SMALL_CSV.name).read_text().splitlines()[1:]


def _cached_keys(repo: PipelineRepo) -> set[str]:
    return ShardStore(repo.root / "artifacts" / "cache" / "describe").keys()


def _share_and_commit(repo: PipelineRepo, message: str) -> None:
    """The documented steps after a run that asked for new answers (or after a merge)."""
    repo.run("gallon", "cache", "share")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", message)


def _push(repo: PipelineRepo) -> None:
    repo.run("dvc", "push")
    repo.run("git", "push", "-q", "origin", "main")
    assert repo.run("git", "status", "--porcelain").stdout == ""


def _seed_repo(root: Path, origin: Path, remote: Path, server: LLMServer, header: str, rows: list[str]) -> PipelineRepo:
    """Person A's project: the pipeline on `rows`, the openai provider on the loopback server, pushed to origin."""
    params = small_params(render={"size": 64, "workers": 1})
    params["describe"].update(
        {"provider": "openai", "model": "test-vision-model", "base_url": server.url, "api_key_env": TEST_KEY_ENV}
    )
    repo = PipelineRepo.create(root, params, env=GIT_IDENTITY)
    for name in (".gitignore", ".gitattributes"):
        shutil.copy(PROJECT / name, root / name)
    _write_csv(repo, header, rows)
    repo.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    repo.run("git", "remote", "add", "origin", str(origin))
    repo.run("dvc", "remote", "add", "-d", "shared", str(remote))
    repo.run("dvc", "install")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "pipeline")
    repo.run("git", "branch", "-M", "main")
    return repo


def _clone(origin: Path, root: Path) -> PipelineRepo:
    subprocess.run(["git", "clone", "-q", str(origin), str(root)], check=True, capture_output=True)
    repo = PipelineRepo(root, env=GIT_IDENTITY)
    repo.run("dvc", "install")
    return repo


def test_two_clones_share_the_llm_cache_and_nobody_pays_twice(tmp_path, llm_server, api_key):
    header, rows = _csv_lines()
    base, b_new, a_new = rows[:40], rows[40:45], rows[45:50]

    # A describes 40 molecules and publishes the answers.
    a = _seed_repo(tmp_path / "a", tmp_path / "origin.git", tmp_path / "remote", llm_server, header, base)
    assert a.repro("describe") == DESCRIBE_CHAIN
    assert llm_server.chat_hits == 40
    _share_and_commit(a, "describe 40 molecules")
    _push(a)
    assert a.run("git", "ls-files", "artifacts").stdout.split() == ["artifacts/cache.dvc"]

    # B clones and pulls: nothing to run, and even a forced describe is answered from the cache.
    b = _clone(tmp_path / "origin.git", tmp_path / "b")
    b.run("dvc", "pull", "--allow-missing")
    assert b.repro("describe") == []
    b.run("dvc", "repro", "--force", "--single-item", "describe")
    assert llm_server.chat_hits == 40
    assert _cached_keys(b) == _cached_keys(a)

    # B adds 5 molecules: only those are asked. B compacts the cache before publishing.
    _write_csv(b, header, base + b_new)
    assert b.repro("describe") == DESCRIBE_CHAIN
    assert llm_server.chat_hits == 45
    b.run("gallon", "cache", "compact")
    _share_and_commit(b, "describe 5 more molecules")
    _push(b)

    # Meanwhile A, without B's work, adds 5 other molecules and asks only for those.
    _write_csv(a, header, a_new + base)
    assert a.repro("describe") == DESCRIBE_CHAIN
    assert llm_server.chat_hits == 50
    _share_and_commit(a, "describe 5 other molecules")

    # A combines both: the cache listing and the data merge cleanly; dvc.lock is regenerated.
    a.run("git", "fetch", "-q")
    a.run("dvc", "fetch", "-A", "artifacts/cache.dvc")
    assert a.run("git", "merge", "origin/main", check=False).returncode != 0
    assert a.run("git", "diff", "--name-only", "--diff-filter=U").stdout.split() == ["dvc.lock"]
    a.run("git", "checkout", "--theirs", "dvc.lock")
    a.run("dvc", "checkout", "artifacts/cache.dvc")
    assert a.repro("describe") == DESCRIBE_CHAIN
    assert llm_server.chat_hits == 50  # B's molecules came from B's answers
    assert sorted(_read_csv_rows(a)) == sorted(base + b_new + a_new)
    _share_and_commit(a, "merge B's molecules")
    _push(a)

    # B takes the merge: nothing to run, nothing to ask, the same 50 answers on both sides.
    b.run("git", "pull", "-q", "--ff-only")
    b.run("dvc", "pull", "--allow-missing")
    assert b.repro("describe") == []
    assert llm_server.chat_hits == 50
    assert len(_cached_keys(b)) == 50 and _cached_keys(b) == _cached_keys(a)
    assert "up to date" in b.run("dvc", "status", "artifacts/cache.dvc").stdout  # nothing new to share

    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert not [path for path in written if api_key.encode() in path.read_bytes()]
