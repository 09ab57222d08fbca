"""`dvc plots show` renders the pipeline's plots: training curves per model and the test ROC or parity plot."""

import json

import pytest

from tests.pipeline_repo import PipelineRepo, small_params

CURVES = ["teacher_valid_score", "teacher_train_loss", "distill_valid_score", "distill_train_loss"]
REGRESSION = {"dataset": {"csv": {"target_columns": ["logp"], "task_type": "regression"}}}


@pytest.fixture(scope="module", params=["classification", "regression"])
def shown(request, tmp_path_factory):
    overrides = {"train": {"seeds": [0], "epochs": 5, "patience": 5}}
    if request.param == "regression":
        overrides |= REGRESSION
    repo = PipelineRepo.create(tmp_path_factory.mktemp(request.param) / "repo", small_params(**overrides))
    repo.repro()
    html_dir = repo.root / "html"
    repo.run("dvc", "plots", "show", "-o", str(html_dir))
    return request.param, json.loads(repo.run("dvc", "plots", "show", "--json").stdout), html_dir


def test_training_curves_render_one_series_per_model(shown):
    _, plots, _ = shown
    for name in CURVES:
        (plot,) = plots["data"][name]
        content = plot["content"]
        assert plot["type"] == "vega" and content["encoding"]["color"]["field"] == "model"
        models = {row["model"] for row in content["data"]["values"]}
        students = {"llm_prior", "plain_mlp", "distilled_mlp"}
        assert models == ({"gnn_teacher"} if name.startswith("teacher") else students)


def test_the_test_split_plot_matches_the_task_type(shown):
    task_type, plots, html_dir = shown
    present, absent = ("test_roc", "test_parity") if task_type == "classification" else ("test_parity", "test_roc")
    (plot,) = plots["data"][present]
    assert {row["model"] for row in plot["content"]["data"]["values"]} == {
        "plain_mlp",
        "llm_prior",
        "gnn_teacher",
        "distilled_mlp",
    }
    other = plots["data"][absent]  # the other task type's file is written empty, so DVC reports no error
    assert all(not entry["content"]["data"]["values"] for entry in other)
    assert not plots.get("errors")
    html = (html_dir / "index.html").read_text()
    assert all(plots["data"][name][0]["content"]["title"] in html for name in [*CURVES, present])
