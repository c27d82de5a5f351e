from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.contracts import is_valid_name, short_commit
from workflow.errors import NamingError
from workflow.naming import execution_input, job_name, resolve_commit, resource_names

NOW = dt.datetime(2026, 11, 21, 19, 30, 0, tzinfo=dt.timezone.utc)


def test_job_name_shape() -> None:
    name = job_name("mask-r-cnn-mlops", "ABC1234def", NOW, suffix="1a2b")
    assert name == "mask-r-cnn-mlops-abc1234-20261121-193000-1a2b"


def test_naive_time_is_utc_and_aware_is_converted() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert (
        job_name("p", "abc", NOW.astimezone(plus_two), suffix="0000")
        == "p-abc-20261121-193000-0000"
    )
    assert (
        job_name("p", "abc", NOW.replace(tzinfo=None), suffix="0000")
        == "p-abc-20261121-193000-0000"
    )


def test_names_are_never_reused() -> None:
    names = {job_name("x", "abc1234", NOW) for _ in range(200)}
    assert len(names) > 190  # 16 random bits per second; collisions are rare, not impossible


def test_long_prefix_is_shortened_to_fit_every_resource() -> None:
    name = job_name("a" * 100, "abc1234", NOW, suffix="ffff")
    for resource in resource_names(name).values():
        assert len(resource) <= 63
        assert is_valid_name(resource)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(min_size=1, max_size=90), commit=st.text(min_size=1, max_size=50))
def test_names_are_valid_for_any_input(prefix: str, commit: str) -> None:
    try:
        base = job_name(prefix, commit, NOW)
    except NamingError as exc:
        assert "commit ID" in str(exc) or "name prefix" in str(exc)
        return
    for resource in resource_names(base).values():
        assert is_valid_name(resource), resource


def test_bad_commit_and_prefix() -> None:
    with pytest.raises(NamingError, match=r"commit ID '---' holds no letter or digit"):
        short_commit("---")
    with pytest.raises(NamingError, match=r"name prefix '___' gives no valid SageMaker name"):
        job_name("___", "abc", NOW)


def test_is_valid_name() -> None:
    assert is_valid_name("a")
    assert is_valid_name("a-b--c")
    assert not is_valid_name("-a")
    assert not is_valid_name("a-")
    assert not is_valid_name("a_b")
    assert not is_valid_name("a" * 64)


def test_execution_input_contract(make_config) -> None:
    config = make_config()
    data = execution_input(config, "abc1234ffff", image_uri="repo:tag", now=NOW)
    base = data["JobName"]
    assert base.startswith("mask-r-cnn-mlops-abc1234-20261121-193000-")
    assert data["CommitId"] == "abc1234ffff"
    assert data["ImageUri"] == "repo:tag"
    assert data["TrainingJobName"] == base
    assert data["ModelName"] == base + "-model"
    assert data["EndpointConfigName"] == base + "-config"
    assert data["TransformJobName"] == base + "-eval"
    assert data["EndpointName"] == "mask-r-cnn"
    assert data["EndpointPollSeconds"] == 30
    assert data["GateThreshold"] == 0.5  # gate.threshold: what AWS runs compare with
    assert data["HyperParameters"] == dict(config.training.hyperparameters)
    bucket = "s3://mask-r-cnn-mlops-000000000000-us-east-1/mask-r-cnn"
    assert data["TrainingData"] == f"{bucket}/data/train/"
    assert data["ValidationData"] == f"{bucket}/data/validation/"
    assert data["TestData"] == f"{bucket}/data/test/"
    assert data["TestImages"] == f"{bucket}/data/test/images/"
    assert data["OutputPath"] == f"{bucket}/models/"
    assert data["CheckpointPath"] == f"{bucket}/checkpoints/{base}/"
    assert data["TransformOutput"] == f"{bucket}/transform/{base}/"
    json.dumps(data)


def test_execution_input_without_image_and_with_local_values(make_config) -> None:
    config = make_config()
    data = execution_input(
        config, "abc", now=NOW, hyperparameters=config.local.hyperparameters, poll_seconds=1
    )
    assert "ImageUri" not in data
    assert data["EndpointPollSeconds"] == 1
    assert data["GateThreshold"] == 0.5  # not given: the configuration's gate.threshold
    assert data["HyperParameters"]["backbone"] == "resnet18_fpn"
    assert data["HyperParameters"]["epochs"] == "100"  # local over training's 10
    assert data["HyperParameters"]["lr"] == "0.001"


def test_execution_input_rejects_bad_values(make_config) -> None:
    config = make_config()
    with pytest.raises(NamingError, match="hyperparameter epochs = 3 is not a string"):
        execution_input(config, "abc", hyperparameters={"epochs": 3})  # type: ignore[dict-item]
    with pytest.raises(NamingError, match="poll seconds -1"):
        execution_input(config, "abc", poll_seconds=-1)
    with pytest.raises(NamingError, match="image URI is empty"):
        execution_input(config, "abc", image_uri=" ")


def test_execution_input_carries_the_gate_threshold(make_config) -> None:
    config = make_config(gate__threshold=0.35)
    assert execution_input(config, "abc", now=NOW)["GateThreshold"] == 0.35
    for value in (0, 0.0, 0.2, 1):
        data = execution_input(config, "abc", now=NOW, gate_threshold=value)
        assert data["GateThreshold"] == float(value)
        assert isinstance(data["GateThreshold"], float)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_execution_input_rejects_bad_gate_thresholds(make_config, bad) -> None:
    config = make_config()
    if bad is None:  # None means "the configured default", which is valid
        assert execution_input(config, "abc", gate_threshold=bad)["GateThreshold"] == 0.5
        return
    with pytest.raises(NamingError) as info:
        execution_input(config, "abc", gate_threshold=bad)
    message = str(info.value)
    assert message.startswith(f"gate threshold {bad!r} must be a number from 0 to 1")
    assert "local.gate_threshold" in message and "\n" not in message


def test_resolve_commit_prefers_codebuild(tmp_path) -> None:
    env = {"CODEBUILD_RESOLVED_SOURCE_VERSION": "feedbeef" * 5}
    assert resolve_commit(env, tmp_path) == "feedbeef" * 5
