from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest
import yaml

from workflow.config import WorkflowConfig, default_values, known_keys, load_config
from workflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_repository_file_equals_the_defaults() -> None:
    from_file = load_config(REPO / "workflow.yaml", environ={})
    assert from_file.to_dict() == load_config(REPO / "workflow.yaml", environ={}).to_dict()
    data = yaml.safe_load((REPO / "workflow.yaml").read_text())
    assert data == default_values()


def test_defaults_and_derived_values(make_config) -> None:
    config = make_config()
    assert config.source == "defaults"
    assert config.name == "mask-r-cnn-mlops"
    assert (
        config.roles.state_machine
        == "arn:aws:iam::000000000000:role/mask-r-cnn-mlops-state_machine"
    )
    assert config.roles.sagemaker == "arn:aws:iam::000000000000:role/mask-r-cnn-mlops-sagemaker"
    assert config.s3.bucket == "mask-r-cnn-mlops-000000000000-us-east-1"
    assert config.codebuild_project == "mask-r-cnn-mlops-build"
    assert config.lambdas.start_build == "mask-r-cnn-mlops-start-build"
    assert config.lambdas.request_approval == "mask-r-cnn-mlops-request-approval"
    assert config.lambdas.evaluate == "mask-r-cnn-mlops-evaluate"
    assert (
        config.notification.topic_arn
        == "arn:aws:sns:us-east-1:000000000000:mask-r-cnn-mlops-notifications"
    )
    assert config.training.hyperparameters["backbone"] == "resnet50_fpn"
    assert config.local.dataset.size == 96
    assert config.s3.uri("data", "train") == (
        "s3://mask-r-cnn-mlops-000000000000-us-east-1/mask-r-cnn/data/train/"
    )
    assert config.state_machine_arn.endswith(":stateMachine:mask-r-cnn-mlops")


def test_config_is_frozen(make_config) -> None:
    config = make_config()
    with pytest.raises(pydantic.ValidationError):
        config.name = "x"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.gate.threshold = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.training.hyperparameters["epochs"] = "99"  # type: ignore[index]
    assert dict(config.local.hyperparameters)["epochs"] == "100"


def test_derived_values_follow_name_account_region(make_config) -> None:
    config = make_config(name="demo", account_id="123456789012", region="eu-west-1")
    assert config.s3.bucket == "demo-123456789012-eu-west-1"
    assert config.roles.sagemaker == "arn:aws:iam::123456789012:role/demo-sagemaker"
    assert config.notification.topic_arn == "arn:aws:sns:eu-west-1:123456789012:demo-notifications"
    assert config.image_repository_uri == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mask-r-cnn"


def test_precedence_defaults_file_env_overrides(write_config) -> None:
    path = write_config(
        {"region": "eu-west-1", "gate": {"threshold": 0.3}, "endpoint": {"poll_seconds": 5}}
    )
    assert load_config(path, environ={}).region == "eu-west-1"
    env = {"MLOPS_GATE__THRESHOLD": "0.4", "MLOPS_REGION": "eu-central-1"}
    config = load_config(path, environ=env)
    assert (config.region, config.gate.threshold, config.endpoint.poll_seconds) == (
        "eu-central-1",
        0.4,
        5,
    )
    config = load_config(path, environ=env, overrides={"gate.threshold": 0.45})
    assert config.gate.threshold == 0.45
    config = load_config(path, environ=env, overrides={"gate": {"threshold": "0.46"}})
    assert config.gate.threshold == 0.46
    assert config.source == str(path)


def test_mlops_config_names_the_file(write_config) -> None:
    path = write_config({"name": "from-env-file"}, name="other.yaml")
    assert load_config(environ={"MLOPS_CONFIG": str(path)}).name == "from-env-file"


def test_env_values_are_typed(make_config, monkeypatch) -> None:
    env = {
        "MLOPS_APPROVAL__ENABLED": "false",
        "MLOPS_TRAINING__SPOT": "yes",
        "MLOPS_TRAINING__INSTANCE_COUNT": "2",
        "MLOPS_APPROVAL__EMAIL": "ops@example.com",
        "MLOPS_TRAINING__HYPERPARAMETERS__EPOCHS": "20",
        "MLOPS_LOCAL__HYPERPARAMETERS": '{epochs: "2", backbone: resnet18_fpn}',
        "MLOPS_ACCOUNT_ID": "012345678901",
    }
    make_config()  # chdir to an empty folder
    config = load_config(environ=env)
    assert config.approval.enabled is False
    assert config.training.spot is True
    assert config.training.instance_count == 2
    assert config.approval.email == "ops@example.com"
    assert config.training.hyperparameters["epochs"] == "20"
    assert config.training.hyperparameters["backbone"] == "resnet50_fpn"
    assert dict(config.local.hyperparameters) == {"epochs": "2", "backbone": "resnet18_fpn"}
    assert config.account_id == "012345678901"
    config = load_config(environ={"MLOPS_APPROVAL__EMAIL": "ops@example.com"})
    assert load_config(environ={"MLOPS_APPROVAL__EMAIL": "null"}).approval.email is None


def test_numbers_in_hyperparameters_become_strings(make_config) -> None:
    config = make_config({"training.hyperparameters": {"epochs": 3, "lr": 0.01}})
    assert dict(config.training.hyperparameters) == {"epochs": "3", "lr": "0.01"}


def _problems(**kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)
    return info.value.problems


def test_every_problem_is_listed_together(write_config) -> None:
    path = write_config(
        {
            "region": "us-east",
            "training": {"instance_type": "p3.2xlarge", "instance_count": 0, "spot": "maybe"},
            "gate": {"threshold": 1.5, "metric": "accuracy"},
            "endpoint": {"name": "-bad-"},
        }
    )
    problems = _problems(path=path, environ={})
    assert len(problems) == 7, problems
    text = "\n".join(problems)
    assert "region = 'us-east' is not an AWS region (e.g. 'us-east-1')" in text
    assert "training.instance_type = 'p3.2xlarge' is not a SageMaker instance type" in text
    assert "training.instance_count = 0 is out of range" in text
    assert "training.spot = 'maybe' is not a boolean" in text
    assert "gate.threshold = 1.5 is out of range (expected 0 to 1)" in text
    assert "gate.metric = 'accuracy' is not one of bbox_mAP, segm_mAP" in text
    assert "endpoint.name = '-bad-'" in text


def test_error_message_names_the_file(write_config) -> None:
    path = write_config({"gate": {"threshold": "high"}})
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}: gate.threshold = 'high' is not a number (e.g. 0.5)"
    assert info.value.exit_code == 2


def test_unknown_keys_are_errors_with_a_hint(write_config) -> None:
    path = write_config({"gate": {"treshold": 0.4}, "colour": "blue"})
    problems = _problems(path=path, environ={})
    assert any(
        "gate.treshold is not a configuration key" in p and "gate.threshold" in p for p in problems
    )
    assert any(p.startswith("colour is not a configuration key") for p in problems)


def test_unknown_env_variable_is_an_error(make_config) -> None:
    make_config()
    problems = _problems(environ={"MLOPS_GATE__TRESHOLD": "0.4"})
    assert problems == [
        "MLOPS_GATE__TRESHOLD does not name a configuration key ('gate.treshold' is unknown); "
        "did you mean 'gate.threshold'? the keys are listed in workflow/config/models.py and README "
        "'Configuration'"
    ]
    assert _problems(environ={"MLOPS_S3____BUCKET": "x"})[0].startswith(
        "environment variable MLOPS_S3____BUCKET is malformed"
    )


def test_env_problem_names_the_variable(make_config) -> None:
    make_config()
    problems = _problems(environ={"MLOPS_S3__BUCKET": "Bad_Bucket"})
    assert problems[0].startswith("s3.bucket = 'Bad_Bucket' (from MLOPS_S3__BUCKET) is not a valid")


def test_override_unknown_key(make_config) -> None:
    with pytest.raises(ConfigError, match=r"--set gate\.colour does not name a configuration key"):
        make_config({"gate.colour": "x"})


def test_section_must_be_a_mapping(write_config) -> None:
    problems = _problems(path=write_config({"gate": 0.5}), environ={})
    assert problems == [
        "gate = 0.5 must be a mapping with the keys enabled, metric, threshold; indent them under 'gate:'"
    ]


def test_invalid_yaml_and_missing_file(write_config, tmp_path) -> None:
    problems = _problems(path=write_config("gate: [1,\n"), environ={})
    assert "is not valid YAML at line" in problems[0]
    problems = _problems(path=write_config("- a\n- b\n"), environ={})
    assert "holds a list, expected a mapping" in problems[0]
    problems = _problems(path=tmp_path / "missing.yaml", environ={})
    assert problems == [
        "the file does not exist; create it (see README 'Configuration') or pass --config"
    ]


def test_empty_file_means_defaults(write_config) -> None:
    assert load_config(write_config(""), environ={}).name == "mask-r-cnn-mlops"


def test_gate_needs_evaluation(make_config) -> None:
    with pytest.raises(ConfigError, match=r"gate\.enabled = True needs evaluation\.enabled = true"):
        make_config(evaluation__enabled=False)
    config = make_config(evaluation__enabled=False, gate__enabled=False)
    assert not config.evaluation.enabled


def test_spot_needs_max_wait_at_least_runtime(make_config) -> None:
    with pytest.raises(
        ConfigError, match=r"managed spot needs max_wait_seconds >= max_runtime_seconds"
    ):
        make_config(training__spot=True, training__max_wait_seconds=10)
    assert (
        make_config(training__spot=False, training__max_wait_seconds=10).training.max_wait_seconds
        == 10
    )


def test_derived_name_that_is_invalid_asks_to_set_it(make_config) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(name="Upper")
    assert any(
        p.startswith("s3.bucket = 'Upper-000000000000-us-east-1' (derived") and "set s3.bucket" in p
        for p in info.value.problems
    )
    assert make_config(name="Upper", s3__bucket="upper-bucket").s3.bucket == "upper-bucket"


def test_bad_hyperparameter_value(make_config) -> None:
    with pytest.raises(
        ConfigError, match=r"training.hyperparameters.flag = True is not a string or number"
    ):
        make_config({"training.hyperparameters": {"flag": True}})


def test_known_keys_cover_the_contract() -> None:
    keys = set(known_keys())
    for key in (
        "roles.state_machine",
        "s3.prefix",
        "training.hyperparameters_ssm_parameter",
        "local.dataset.seed",
        "notification.topic_arn",
        "endpoint.poll_seconds",
    ):
        assert key in keys


def test_to_dict_round_trips(make_config, write_config) -> None:
    config = make_config(gate__threshold=0.2)
    again = load_config(write_config(config.to_dict()), environ={})
    assert isinstance(again, WorkflowConfig)
    assert again == config


def test_file_is_found_in_a_parent_directory(write_config, tmp_path, monkeypatch) -> None:
    write_config({"name": "from-parent"})
    child = tmp_path / "notebooks"
    child.mkdir()
    monkeypatch.chdir(child)
    config = load_config(environ={})
    assert config.name == "from-parent"
    assert config.source == str(tmp_path / "workflow.yaml")


def test_local_gate_threshold_default_and_sources(make_config, monkeypatch) -> None:
    config = make_config()
    assert config.local.gate_threshold == 0.2 and config.gate.threshold == 0.5
    assert make_config(local__gate_threshold=1).local.gate_threshold == 1.0
    monkeypatch.setenv("MLOPS_LOCAL__GATE_THRESHOLD", "0.3")
    assert load_config(environ=dict(os.environ)).local.gate_threshold == 0.3
    assert "local.gate_threshold" in known_keys()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1.5, "1.5 is out of range (expected 0 to 1)"),
        (-0.1, "-0.1 is out of range (expected 0 to 1)"),
        ("high", "'high' is not a number (e.g. 0.5)"),
        (True, "True is not a number (e.g. 0.5)"),
    ],
)
def test_local_gate_threshold_is_validated(write_config, value, problem) -> None:
    path = write_config({"local": {"gate_threshold": value}})
    assert _problems(path=path, environ={}) == [f"local.gate_threshold = {problem}"]


def test_readme_table_names_every_key() -> None:
    """A new key is one typed field and one row of README 'Configuration'."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
            head, _, tail = token.partition("{")  # `gate.{enabled,metric}`: one name each
            names.update({token} if not tail else {head + p for p in tail.rstrip("}").split(",")})

    def covered(key: str) -> bool:
        parts = key.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        return bool(prefixes & names) or any(
            name.endswith(".*") and key.startswith(name[:-1]) for name in names
        )

    assert [key for key in known_keys() if not covered(key)] == []


def test_data_capture_defaults_and_uri(make_config) -> None:
    config = make_config()
    capture = config.endpoint.data_capture
    assert (capture.enabled, capture.sampling_percentage) == (True, 10)
    assert config.data_capture_uri == (
        "s3://mask-r-cnn-mlops-000000000000-us-east-1/mask-r-cnn/data-capture"
    )
    config = make_config(s3__prefix="", endpoint__data_capture__destination_prefix="dc/x")
    assert config.data_capture_uri == "s3://mask-r-cnn-mlops-000000000000-us-east-1/dc/x"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("sampling_percentage", 101, "101 is out of range (expected 0 to 100 percent)"),
        ("sampling_percentage", -1, "-1 is out of range (expected 0 to 100 percent)"),
        ("sampling_percentage", 2.5, "2.5 is not an integer (e.g. 1)"),
        ("enabled", "yes", "'yes' is not a boolean (expected true or false)"),
        (
            "destination_prefix",
            "/capture/",
            "'/capture/' is not a valid key prefix (expected segments of letters, digits and "
            "!_.*'()- separated by '/', with no leading or trailing '/')",
        ),
    ],
)
def test_data_capture_is_validated(write_config, key, value, problem) -> None:
    path = write_config({"endpoint": {"data_capture": {key: value}}})
    assert _problems(path=path, environ={}) == [f"endpoint.data_capture.{key} = {problem}"]


def test_train_shapes_default_sources_and_problems(make_config, write_config) -> None:
    assert make_config().local.dataset.train_shapes == (2, 5)
    environ = {"MLOPS_LOCAL__DATASET__TRAIN_SHAPES": "[3, 6]"}
    assert load_config(write_config({}), environ=environ).local.dataset.train_shapes == (3, 6)
    environ = {"MLOPS_LOCAL__DATASET__TRAIN_SHAPES": "null"}
    assert load_config(write_config({}), environ=environ).local.dataset.train_shapes is None
    expectation = (
        "is not [fewest, most] shapes per image between 0 and 8 (e.g. [2, 5]), nor null for "
        "the 0-4 of the held-out splits"
    )
    for value in ([5, 2], [1, 9], 4, [True, 3]):
        path = write_config({"local": {"dataset": {"train_shapes": value}}})
        problems = _problems(path=path, environ={})
        assert problems == [f"local.dataset.train_shapes = {value!r} {expectation}"]
