import pytest

from pipeline.params import ParamsError, load_params, parse_params
from tests.conftest import PROJECT


def test_committed_params_file_is_valid_and_defaults_match_the_paper():
    params = load_params(PROJECT / "params.yaml")
    assert params.dataset.name == "bace"
    assert params.describe.provider == "offline"
    assert (params.teacher.model, params.teacher.hidden, params.teacher.layers) == ("gcn", 32, 3)
    assert params.teacher.dropout == 0.3 and params.teacher.lr == 0.005
    assert params.distill.alpha == params.distill.beta == 0.1
    assert len(params.train.seeds) >= 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"distill": {"alpah": 0.1}}, "distill.alpah: unknown key"),
        ({"distill": {"alpha": -1}}, "distill.alpha"),
        ({"train": {"seeds": []}}, "train.seeds"),
        ({"describe": {"provider": "claude"}}, "describe.provider"),
        ({"dataset": {"name": "muv"}}, "allowed: bace, bbbp"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"describe": {"base_url": "file:///etc/passwd"}}, "http:// or https://"),
        ({"split": {"train": 0.9, "valid": 0.2}}, "leave a test part"),
        ({"dataset": {"name": "csv"}}, "dataset.csv"),
        (
            {
                "dataset": {
                    "name": "csv",
                    "csv": {"path": "../../etc/x.csv", "target_columns": ["y"], "task_type": "regression"},
                }
            },
            "dataset.csv.path: Value error, put the CSV in the project's data/ folder",
        ),
    ],
)
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as error:
        parse_params(raw)
    assert expected in str(error.value)


def test_unknown_provider_message_lists_allowed_values():
    with pytest.raises(ParamsError, match="'offline'.*'openai'"):
        parse_params({"describe": {"provider": "anthropic"}})


def test_yaml_1e5_is_read_as_a_number(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  lr: 1e-5\n  weight_decay: 5e-4\n")
    params = load_params(path)
    assert params.teacher.lr == pytest.approx(1e-5)
    assert params.teacher.weight_decay == pytest.approx(5e-4)


def test_broken_yaml_and_missing_file_are_clear(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("dataset: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
