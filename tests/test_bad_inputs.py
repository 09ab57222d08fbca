"""Bad params, bad data and broken artifacts through `gallon <stage>`: one `error:` line, exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from pipeline.featurize import ATOM_DIM, collate, graphs_from_smiles
from pipeline.models import AtomMLPStudent, GNNTeacher
from pipeline.params import DistillParams, StudentParams, TeacherParams, TrainParams
from pipeline.student import student_inputs, train_student
from pipeline.teacher import teacher_architecture, train_teacher
from pipeline.train import GraphInputs, LabelScaler
from stages.cli import app
from tests.llm_fixtures import TEST_KEY_ENV
from tests.pipeline_repo import PipelineRepo, small_params

BONDLESS = ["C", "Br", "[Na+].[Cl-]", "O", "N", "Cl", "I", "S", "[K+].[Br-]", "[Li+].[F-]", "F", "[NH4+].[Cl-]"]
NORMAL = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccncc1", "CCO", "CCN", "CCCl", "CC(=O)O", "c1ccccc1", "CCOCC"]
SPLIT = {"method": "random", "train": 0.6, "valid": 0.2, "seed": 0}


def _csv(rows: list[tuple[str, object]], path: Path = Path("data/rows.csv")) -> dict:
    """Write `smiles,y` rows; returns the matching dataset params."""
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=["smiles", "y"]).to_csv(path, index=False)
    csv = {"path": str(path), "smiles_column": "smiles", "target_columns": ["y"], "task_type": "classification"}
    return {"name": "csv", "csv": csv}


def _gallon(stage: str, params: dict | str | None = None) -> tuple[int, str]:
    if params is not None:
        text = params if isinstance(params, str) else yaml.safe_dump(params)
        Path("params.yaml").write_text(text)
    result = CliRunner().invoke(app, [stage])
    return result.exit_code, result.stderr


def _one_error_line(code: int, stderr: str) -> str:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("error: "), stderr
    return stderr


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _labelled(smiles: list[str]) -> list[tuple[str, int]]:
    return [(smi, index % 2) for index, smi in enumerate(smiles)]


# --- params.yaml ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("distill:\n  alpah: 0.1\n", "distill.alpah: unknown key"),
        ("teacher:\n  hidden: lots\n", "teacher.hidden: Input should be a valid integer"),
        ("distill:\n  alpha: -0.5\n", "distill.alpha: Input should be greater than or equal to 0 (got -0.5)"),
        ("train:\n  seeds: []\n", "train.seeds: List should have at least 1 item"),
        ("train:\n  seeds: [1, 1]\n", "train.seeds: Value error, seeds must be distinct"),
        ("split:\n  seed: -3\n", "split.seed: Input should be greater than or equal to 0"),
        ("describe:\n  provider: claude\n", "describe.provider: Input should be 'offline' or 'openai' (got 'claude')"),
        ("embed:\n  provider: cohere\n", "embed.provider: Input should be 'local' or 'openai'"),
        ("dataset:\n  name: muv\n", "unknown dataset 'muv'; allowed: bace, bbbp, clintox"),
        ("dataset:\n  fragments: no\n", "dataset.fragments: Input should be 'keep_all', 'largest' or 'strip_salts'"),
        ("describe:\n  model: yes\n", "YAML reads yes/no/on/off/true/false as booleans: quote the value"),
        ("teacher:\n  lr: 0.1.0\n", "teacher.lr: Input should be a valid number, unable to parse string"),
        ("train:\n  epochs: 1e3\n", "train.epochs: Input should be a valid integer"),
        ("distill:\n  alpha: 0.1\n  alpha: 0.2\n", "duplicate key 'alpha'"),
        ("- dataset\n", "must hold a mapping of sections"),
    ],
)
def test_bad_params_name_the_key_through_the_cli(workdir, text, expected):
    stderr = _one_error_line(*_gallon("prepare", text))
    assert expected in stderr
    assert not (workdir / "artifacts").exists()  # nothing ran


def test_yaml_numbers_in_exponent_form_are_numbers(workdir):
    code, stderr = _gallon("prepare", "teacher:\n  lr: 1e-5\ndataset:\n  name: csv\n")
    assert "teacher.lr" not in stderr and "dataset.csv" in stderr  # lr was fine; the missing csv section was not


def test_mean_duplicates_on_classification_is_a_params_error(workdir):
    params = {"dataset": {**_csv(_labelled(NORMAL)), "duplicates": "mean"}, "split": SPLIT}
    assert "allowed for classification: drop_conflicting, keep_first" in _one_error_line(*_gallon("prepare", params))


# --- data files ---------------------------------------------------------------------------------------------


def test_strict_mode_fails_naming_the_row(workdir):
    params = {"dataset": {**_csv(_labelled([*NORMAL, "c1cccc1"])), "strict": True}, "split": SPLIT}
    stderr = _one_error_line(*_gallon("prepare", params))
    assert "row 9: SMILES 'c1cccc1' rejected (kekulize: " in stderr and "dataset.strict: false" in stderr


def test_bad_label_and_missing_column_through_the_cli(workdir):
    params = {"dataset": _csv([*_labelled(NORMAL), ("CCCC", "yes")]), "split": SPLIT}
    assert "column 'y' row 9 holds 'yes'" in _one_error_line(*_gallon("prepare", params))
    params["dataset"]["csv"]["target_columns"] = ["activity"]
    assert "no column(s) ['activity']; its columns are ['smiles', 'y']" in _one_error_line(*_gallon("prepare", params))


def test_ring_free_tiny_scaffold_split_is_one_clear_line(workdir):
    params = {"dataset": _csv(_labelled(["CCO", "CCN", "CCC", "CCCC", "CCCCC", "c1ccccc1"])), "split": {}}
    stderr = _one_error_line(*_gallon("prepare", params))
    assert len(stderr.strip().splitlines()) == 1
    assert "5 are ring-free and share the empty scaffold" in stderr and "split.method: random" in stderr


def test_ring_free_warning_is_one_line_and_kept_in_the_summary(workdir):
    ring_free = ["CCO", "CCN", "CCC", "CCCC", "CCCCC", "CCCCCC", "CCCO"]
    rings = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CC1", "C1CCC1", "c1ccoc1", "C1CCNCC1", "c1ccsc1"]
    params = {"dataset": _csv(_labelled(ring_free + rings)), "split": {"train": 0.6, "valid": 0.2}}
    code, stderr = _gallon("prepare", params)
    assert code == 0, stderr
    assert "warning: 7 of 15 molecules are ring-free" in stderr and "UserWarning" not in stderr
    summary = json.loads(Path("artifacts/prepare/summary.json").read_text())
    assert summary["warnings"] == [
        "7 of 15 molecules are ring-free: they share the empty scaffold and stay in one part"
    ]


# --- missing or corrupt artifacts between stages ----------------------------------------------------------------


@pytest.fixture
def prepared(workdir) -> Path:
    code, stderr = _gallon("prepare", {"dataset": _csv(_labelled(NORMAL + BONDLESS)), "split": SPLIT})
    assert code == 0, stderr
    return workdir / "artifacts"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_spine_names_the_file_and_the_rebuild_command(prepared):
    _truncate(prepared / "prepare" / "molecules.parquet")
    for stage in ("render", "teacher", "describe"):
        stderr = _one_error_line(*_gallon(stage))
        assert "artifacts/prepare/molecules.parquet is corrupt" in stderr and "`dvc repro prepare`" in stderr


def test_deleted_or_foreign_prepare_outputs_are_named(prepared):
    (prepared / "prepare" / "summary.json").write_text("{}")
    assert "summary.json has no valid 'task' entry" in _one_error_line(*_gallon("teacher"))
    (prepared / "prepare" / "summary.json").unlink()
    assert "artifacts/prepare/summary.json is missing; rebuild it with `dvc repro prepare`" in _gallon("teacher")[1]
    pd.DataFrame({"key": ["CCO"]}).to_parquet(prepared / "prepare" / "molecules.parquet")
    assert "lacks column(s) ['smiles', 'row', 'split']" in _one_error_line(*_gallon("render"))


def test_a_deleted_picture_is_named_not_silently_skipped(prepared):
    params = yaml.safe_load(Path("params.yaml").read_text())
    assert _gallon("render", {**params, "render": {"size": 64, "workers": 1}})[0] == 0
    victim = sorted((prepared / "render" / "images").glob("*.png"))[0]
    victim.unlink()
    stderr = _one_error_line(*_gallon("describe"))
    assert f"{victim.name} is listed in artifacts/render/index.parquet but missing" in stderr
    assert "`dvc repro render`" in stderr


def test_truncated_or_outdated_model_outputs_are_named(prepared):
    params = yaml.safe_load(Path("params.yaml").read_text())
    stderr = _one_error_line(*_gallon("evaluate", {**params, "train": {"seeds": [0]}}))
    assert "artifacts/distill/seed_0/plain_mlp.npz is missing" in stderr and "`dvc repro distill`" in stderr
    npz = prepared / "distill" / "seed_0" / "plain_mlp.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, keys=np.array(["CCO"]), outputs=np.zeros((1, 1)))
    assert "lacks array(s) ['predictions']" in _one_error_line(*_gallon("evaluate"))
    _truncate(npz)
    assert "plain_mlp.npz is corrupt (BadZipFile" in _one_error_line(*_gallon("evaluate"))


# --- multi-fragment policy, duplicates and one LLM call per key ------------------------------------------------

SALTS = [("CC(=O)[O-].[Na+]", 1), ("CN.Cl", 0), ("c1ccccc1C(=O)[O-].[K+]", 1)]


def _describe_offline(dataset: dict) -> tuple[dict, pd.DataFrame]:
    code, stderr = _gallon("prepare", {"dataset": dataset, "split": SPLIT, "describe": {"image": False}})
    assert code == 0, stderr
    code, stderr = _gallon("describe")
    assert code == 0, stderr
    summary = json.loads(Path("artifacts/prepare/summary.json").read_text())
    return summary, pd.read_parquet("artifacts/describe/descriptions.parquet")


def test_fragment_policy_is_recorded_and_changes_the_describe_cache_key(workdir):
    rows = [*SALTS, *_labelled(NORMAL)]
    summary, kept = _describe_offline(_csv(rows))
    assert summary["fragments"] == "keep_all"
    summary, largest = _describe_offline({**_csv(rows), "fragments": "largest"})
    assert summary["fragments"] == "largest"
    assert "CC(=O)[O-]" in set(largest["molecule_key"]) and "CC(=O)[O-].[Na+]" in set(kept["molecule_key"])
    salt_keys = set(kept["cache_key"]) - set(largest["cache_key"])
    assert len(salt_keys) == len(SALTS)  # only the salts' prompts, so only their cache keys, changed
    assert len(set(kept["cache_key"]) & set(largest["cache_key"])) == len(NORMAL)


def test_one_llm_request_per_molecule_key(workdir, llm_server, api_key):
    spellings = [("CCO", 1), ("OCC", 1), ("C(O)C", 1), ("c1ccncc1", 0), ("n1ccccc1", 0), ("CCN", 1), ("NCC", 0)]
    describe = {
        "provider": "openai",
        "model": "test-vision-model",
        "base_url": llm_server.url,
        "api_key_env": TEST_KEY_ENV,
        "image": False,
    }
    others = _labelled(["CC(=O)O", "c1ccccc1", "CCOCC", "CCCl", "CC(C)O"])
    params = {"dataset": _csv([*spellings, *others]), "split": SPLIT, "describe": describe}
    code, stderr = _gallon("prepare", params)
    assert code == 0, stderr
    molecules = pd.read_parquet("artifacts/prepare/molecules.parquet")
    conflicts = pd.read_csv("artifacts/prepare/conflicts.csv")
    assert conflicts[["key", "source_rows", "action"]].to_dict("records") == [
        {"key": "CCN", "source_rows": "6;7", "action": "dropped"}
    ]
    assert molecules["key"].is_unique and "CCN" not in set(molecules["key"])
    assert molecules.set_index("key").loc["CCO", "source_rows"] == "1;2;3"
    assert molecules.groupby("key")["split"].nunique().eq(1).all()
    code, stderr = _gallon("describe")
    assert code == 0, stderr
    assert llm_server.chat_hits == len(molecules) == molecules["key"].nunique()


# --- molecules without bonds: teacher, student, picture and description ----------------------------------------


def test_teacher_and_student_train_on_mixed_and_bondless_batches():
    labels = np.array([[index % 2] for index in range(len(NORMAL + BONDLESS))], dtype=float)
    order = np.arange(len(labels))
    parts = {"train": order[::2], "valid": order[1::4], "test": order[3::4]}
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    train = TrainParams(seeds=[0], epochs=3, patience=3)
    smiles = NORMAL + BONDLESS
    teacher = train_teacher(
        GraphInputs(graphs_from_smiles(smiles)), labels, parts, "classification", scaler, TeacherParams(), train, 0
    )
    student = student_inputs(smiles, parts["train"], StudentParams())
    distilled = train_student(
        student.inputs, labels, parts, "classification", scaler, DistillParams(), train, 0, sources=[]
    )
    assert np.isfinite(teacher.outputs).all() and np.isfinite(distilled.outputs).all()
    only_bondless = collate(graphs_from_smiles(BONDLESS))
    gine = GNNTeacher(**teacher_architecture(TeacherParams(model="gine"), 1))
    for model in (gine, AtomMLPStudent(ATOM_DIM, 8, 2, 0.0, 1)):
        output, _ = model(only_bondless)
        output.sum().backward()
        assert output.shape == (len(BONDLESS), 1) and torch.isfinite(output).all()


def test_pipeline_runs_end_to_end_on_molecules_without_bonds(tmp_path):
    params = small_params(
        dataset={"csv": {"path": "data/bondless.csv", "target_columns": ["y"], "task_type": "regression"}},
        train={"seeds": [0], "epochs": 3, "patience": 3},
    )
    repo = PipelineRepo.create(tmp_path / "repo", params)
    frame = pd.DataFrame({"smiles": BONDLESS, "y": np.linspace(-1.0, 1.0, len(BONDLESS))})
    frame.to_csv(repo.root / "data" / "bondless.csv", index=False)
    repo.repro()
    artifacts = repo.root / "artifacts"
    assert len(pd.read_parquet(artifacts / "prepare" / "molecules.parquet")) == len(BONDLESS)
    render = json.loads((artifacts / "render" / "summary.json").read_text())
    assert render["rendered"] == len(BONDLESS) and render["failed_by_reason"] == {}
    descriptions = pd.read_parquet(artifacts / "describe" / "descriptions.parquet")
    assert descriptions["description"].str.contains("heavy atom").all()
    metrics = json.loads((artifacts / "evaluate" / "metrics.json").read_text())
    assert all(np.isfinite(entry["test_rmse"]) for entry in metrics.values())
