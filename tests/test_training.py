from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.distillation import DistillationGuide, Guidance, logit_distance, resolve_terms
from pipeline.featurize import graphs_from_smiles
from pipeline.params import DistillParams, TeacherParams, TrainParams
from pipeline.student import train_student
from pipeline.teacher import train_teacher
from pipeline.train import GraphInputs, LabelScaler, label_loss, map_seeds
from tests.conftest import SMALL_CSV

TRAIN = TrainParams(seeds=[0], epochs=15, patience=15)


@pytest.fixture(scope="module")
def data():
    frame = pd.read_csv(SMALL_CSV)
    labels = frame[["active"]].to_numpy(dtype=float).copy()
    labels[::7] = np.nan  # missing labels must be ignored, not read as 0
    order = np.arange(len(frame))
    parts = {"train": order[:40], "valid": order[40:50], "test": order[50:]}
    return GraphInputs(graphs_from_smiles(frame["smiles"].tolist())), labels, parts


def test_label_loss_ignores_missing_labels():
    output = torch.tensor([[0.0, 5.0], [0.0, -5.0]])
    target = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output[:, 0], target[:, 0])
    assert torch.isclose(label_loss(output, target, "classification"), expected)


def test_same_seed_gives_identical_teacher_outputs(data):
    inputs, labels, parts = data
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    first = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(), TRAIN, seed=3)
    second = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(), TRAIN, seed=3)
    other = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(), TRAIN, seed=4)
    assert np.array_equal(first.outputs, second.outputs)
    assert not np.array_equal(first.outputs, other.outputs)
    assert first.outputs.shape == (60, 1) and first.representations.shape == (60, 32)


def test_teacher_targets_come_from_eval_mode(data):
    inputs, labels, parts = data
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    run = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(dropout=0.5), TRAIN, seed=0)
    assert not run.fit.model.training
    again, _ = run.fit.model(inputs.batch(torch.arange(60)))
    assert np.allclose(again.detach().numpy(), run.outputs, atol=1e-6)  # dropout off: deterministic


def test_gine_teacher_trains_on_bond_features(data):
    inputs, labels, parts = data
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    run = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(model="gine"), TRAIN, 0)
    assert np.isfinite(run.outputs).all() and len(run.fit.history) >= 1


def test_distillation_changes_the_student_and_zero_weights_do_not(data):
    inputs, labels, parts = data
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    teacher = train_teacher(inputs, labels, parts, "classification", scaler, TeacherParams(), TRAIN, seed=0)
    source = Guidance(torch.as_tensor(teacher.outputs), torch.as_tensor(teacher.representations), 1.0)
    params = DistillParams()
    plain = train_student(inputs, labels, parts, "classification", scaler, params, TRAIN, 0, sources=[])
    zero = train_student(
        inputs,
        labels,
        parts,
        "classification",
        scaler,
        params,
        TRAIN,
        0,
        sources=[Guidance(source.outputs, source.representations, 0.0)],
    )
    guided = train_student(inputs, labels, parts, "classification", scaler, params, TRAIN, 0, sources=[source])
    assert np.array_equal(plain.outputs, zero.outputs)
    assert not np.array_equal(plain.outputs, guided.outputs)


def test_logit_kd_is_zero_only_when_student_matches_source():
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1]])
    assert logit_distance(logits, logits, "classification", 2.0) == pytest.approx(0.0, abs=1e-7)
    assert logit_distance(logits, -logits, "classification", 2.0) > 0.1
    assert logit_distance(logits, logits + 1, "regression", 1.0) == pytest.approx(1.0)


def test_paper_terms_and_representation_projection():
    assert resolve_terms("paper", "classification") == (True, False)
    assert resolve_terms("paper", "regression") == (False, True)
    assert resolve_terms("both", "regression") == (True, True)
    source = Guidance(torch.zeros(4, 1), torch.ones(4, 16), 1.0, available=torch.tensor([True, False, True, True]))
    guide = DistillationGuide(8, [source], "regression", "representations", 1.0)
    loss = guide(torch.zeros(2, 1), torch.zeros(2, 8, requires_grad=True), torch.tensor([0, 1]))
    loss.backward()
    assert isinstance(guide.projections[0], torch.nn.Linear) and loss > 0
    unavailable = guide(torch.zeros(1, 1), torch.zeros(1, 8), torch.tensor([1]))
    assert unavailable == 0


def test_regression_labels_are_standardised_on_train_only():
    y = np.array([[1.0], [3.0], [np.nan], [100.0]])
    scaler = LabelScaler.fit(y[:3], "regression")
    assert scaler.mean[0] == 2.0 and scaler.std[0] == 1.0
    assert np.allclose(scaler.from_model(scaler.to_model(y[:2])), y[:2])


def test_seeds_trained_side_by_side_give_the_same_numbers_as_one_by_one(data):
    inputs, labels, parts = data
    scaler = LabelScaler.fit(labels[parts["train"]], "classification")
    train_one = partial(train_teacher, inputs, labels, parts, "classification", scaler, TeacherParams(), TRAIN)
    serial = map_seeds(train_one, [0, 1], workers=1)
    parallel = map_seeds(train_one, [0, 1], workers=2)
    for one, other in zip(serial, parallel, strict=True):
        assert np.array_equal(one.outputs, other.outputs)
