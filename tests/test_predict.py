"""`gallon predict` on real molecules: a tiny student trained here, then scored through the command."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from pipeline.artifacts import TaskInfo
from pipeline.checkpoint import save_checkpoint
from pipeline.chem import parse_smiles
from pipeline.params import DistillParams, StudentParams, TeacherParams, TrainParams
from pipeline.predict import PredictError, StudentPredictor
from pipeline.student import student_inputs, train_student
from pipeline.teacher import train_teacher
from pipeline.train import LabelScaler
from stages.cli import app
from tests.conftest import SMALL_CSV

TRAIN = TrainParams(seeds=[0], epochs=8, patience=8)
TASK = TaskInfo("small", ["logp"], "regression")
INVALID = {
    "C1CC": "parse",
    "not a molecule": "parse",
    "": "empty",
    "[Na+].[Cl-]": None,
    "c1cccc1": "kekulize",
    "C(C)(C)(C)(C)C": "valence",
    "[H][H]": "no_heavy_atoms",
}


@pytest.fixture(scope="module")
def raw_smiles():
    return pd.read_csv(SMALL_CSV)["smiles"].tolist()


def _train(tmp_path, raw_smiles, inputs: str):
    """A student trained on prepare's canonical keys, as the pipeline does; returns its checkpoint and outputs."""
    keys = [parse_smiles(smiles).key for smiles in raw_smiles]
    labels = pd.read_csv(SMALL_CSV)[["logp"]].to_numpy(dtype=float)
    order = np.arange(len(keys))
    parts = {"train": order[:40], "valid": order[40:50], "test": order[50:]}
    params = DistillParams(student=StudentParams(inputs=inputs, fingerprint_bits=256))
    built = student_inputs(keys, parts["train"], params.student)
    scaler = LabelScaler.fit(labels[parts["train"]], "regression")
    run = train_student(built.inputs, labels, parts, "regression", scaler, params, TRAIN, 0, sources=[])
    path = tmp_path / f"{inputs}.pt"
    save_checkpoint(
        path,
        run.fit.model,
        "distilled_mlp",
        run.architecture,
        TASK,
        scaler,
        {**built.features, "fragments": "keep_all"},
    )
    return path, scaler.to_label_space(run.outputs, "regression")


@pytest.fixture(scope="module", params=["atoms", "fingerprint+descriptors", "fingerprint+pooled_atoms"])
def trained(request, tmp_path_factory, raw_smiles):
    return _train(tmp_path_factory.mktemp(request.param.replace("+", "_")), raw_smiles, request.param)


@pytest.fixture(scope="module")
def vector_checkpoint(tmp_path_factory, raw_smiles):
    return _train(tmp_path_factory.mktemp("vector"), raw_smiles, "fingerprint+descriptors")[0]


def test_predictions_equal_the_models_outputs_on_the_training_molecules(trained, raw_smiles):
    path, expected = trained
    frame = StudentPredictor(path).predict_chunk(raw_smiles, first_row=1)  # raw spellings, stereo included
    assert (frame["error"] == "").all() and frame["row"].tolist() == list(range(1, 61))
    assert np.allclose(frame["logp"].to_numpy(), expected[:, 0], atol=1e-5)


def test_invalid_smiles_become_error_rows_in_place(trained):
    path, expected = trained
    smiles = ["CCO", *INVALID, None, "CC(=O)Oc1ccccc1C(=O)O"]
    frame = StudentPredictor(path).predict_chunk(smiles, first_row=1)
    assert len(frame) == len(smiles) and frame["smiles"].iloc[1 : len(INVALID) + 1].tolist() == list(INVALID)
    for smi, reason in INVALID.items():
        row = frame[frame["smiles"] == smi].iloc[0]
        assert (row["error"].split(":")[0] == reason) if reason else row["error"] == ""
        assert np.isnan(row["logp"]) == bool(reason)
    assert frame["error"].iloc[-2].startswith("empty")
    assert "unclosed ring" in frame[frame["smiles"] == "C1CC"]["error"].iloc[0]  # RDKit's own words
    assert np.isclose(frame["logp"].iloc[-1], expected[0, 0], atol=1e-5)  # aspirin, the first training molecule


def test_csv_and_parquet_round_trip_through_the_command(trained, raw_smiles, tmp_path):
    path, expected = trained
    pd.DataFrame({"name": range(62), "structure": [*raw_smiles, "C1CC", "CCO"]}).to_csv(
        tmp_path / "in.csv", index=False
    )
    runner = CliRunner()
    first = runner.invoke(
        app,
        [
            "predict",
            "-c",
            str(path),
            "-i",
            str(tmp_path / "in.csv"),
            "--smiles-column",
            "structure",
            "-o",
            str(tmp_path / "out.parquet"),
            "--chunk-size",
            "7",
        ],
    )
    assert first.exit_code == 0, first.output
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert len(scored) == 62 and np.allclose(scored["logp"].iloc[:60], expected[:, 0], atol=1e-5)
    assert scored["error"].iloc[60].startswith("parse") and scored["error"].iloc[61] == ""
    second = runner.invoke(
        app,
        [
            "predict",
            "-c",
            str(path),
            "-i",
            str(tmp_path / "out.parquet"),
            "-o",
            str(tmp_path / "again.csv"),
            "--no-progress",
        ],
    )
    assert second.exit_code == 0, second.output
    again = pd.read_csv(tmp_path / "again.csv", keep_default_na=False, na_values=[""])
    # other chunk sizes batch the float32 matrix products differently: equal to float32 noise, near 0 too
    assert np.allclose(again["logp"], scored["logp"], atol=1e-5, equal_nan=True)
    assert list(tmp_path.glob(".*partial")) == []


def test_worker_processes_give_the_same_rows_in_the_same_order(vector_checkpoint, raw_smiles, tmp_path):
    pd.DataFrame({"smiles": [*raw_smiles, "C1CC"] * 3}).to_csv(tmp_path / "in.csv", index=False)
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}.csv"
        command = ["predict", "-c", str(vector_checkpoint), "-i", str(tmp_path / "in.csv"), "-o", str(out)]
        result = CliRunner().invoke(app, [*command, "--chunk-size", "16", "--workers", workers, "--no-progress"])
        assert result.exit_code == 0, result.output
        outputs.append(pd.read_csv(out, keep_default_na=False, na_values=[""]))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    assert outputs[1]["row"].tolist() == list(range(1, 184))


def test_smiles_arguments_print_csv(trained):
    path, expected = trained
    result = CliRunner().invoke(app, ["predict", "-c", str(path), "--no-progress", "CC(=O)Oc1ccccc1C(=O)O", "C1CC"])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    assert list(printed.columns) == ["row", "smiles", "logp", "error"]
    assert np.isclose(printed["logp"].iloc[0], expected[0, 0], atol=1e-5) and printed["logp"].isna().iloc[1]


def _tampered(source, target, change):
    payload = torch.load(source, weights_only=True)
    change(payload)
    torch.save(payload, target)
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(kind="llm_prior"), "runs only the student"),
        (lambda p: p["versions"].update(gallon="9.0.0"), "written by gallon 9.0.0"),
        (lambda p: p["features"].update(format=0), "feature format 0"),
        (lambda p: p["features"].update(fingerprint_bits=128), "expects 473 input features .* gives 345 here"),
        (lambda p: p["features"].update(descriptor_names=["MolWt"]), "descriptors"),
        (lambda p: p["features"].update(inputs="fingerprint+graph"), "unknown"),
    ],
)
def test_mismatched_checkpoints_are_refused(vector_checkpoint, tmp_path, change, message):
    StudentPredictor(vector_checkpoint)  # the untouched checkpoint is accepted
    with pytest.raises(PredictError, match=message):
        StudentPredictor(_tampered(vector_checkpoint, tmp_path / "bad.pt", change))


def test_teacher_checkpoint_is_refused_by_the_command(tmp_path, raw_smiles):
    from pipeline.featurize import graphs_from_smiles
    from pipeline.train import GraphInputs

    labels = pd.read_csv(SMALL_CSV)[["logp"]].to_numpy(dtype=float)
    parts = {"train": np.arange(40), "valid": np.arange(40, 50)}
    scaler = LabelScaler.fit(labels[:40], "regression")
    run = train_teacher(
        GraphInputs(graphs_from_smiles(raw_smiles)),
        labels,
        parts,
        "regression",
        scaler,
        TeacherParams(),
        TrainParams(epochs=1, patience=1),
        0,
    )
    save_checkpoint(tmp_path / "teacher.pt", run.fit.model, "gnn_teacher_gcn", run.architecture, TASK, scaler)
    result = CliRunner().invoke(app, ["predict", "-c", str(tmp_path / "teacher.pt"), "CCO"])
    assert result.exit_code == 2 and "runs only the student" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give SMILES as arguments or --input"),
        (["-i", "{tmp}/missing.csv"], "does not exist"),
        (["-i", "{tmp}/in.csv"], "--smiles-column"),
        (["-i", "{tmp}/in.csv", "--smiles-column", "structure", "-o", "{tmp}/out.xlsx"], "name it .csv or .parquet"),
    ],
)
def test_unusable_inputs_and_outputs_get_one_clear_line(vector_checkpoint, tmp_path, arguments, message):
    pd.DataFrame({"structure": ["CCO"]}).to_csv(tmp_path / "in.csv", index=False)
    command = ["predict", "-c", str(vector_checkpoint), *[arg.format(tmp=tmp_path) for arg in arguments]]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
