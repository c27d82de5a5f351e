"""The execution input of a local run: the same keys as an AWS run, local values."""

from __future__ import annotations

import pytest
from mask_r_cnn.synthetic import generate
from mask_r_cnn.synthetic import main as synthetic_main

from workflow.config import load_config
from workflow.errors import ConfigError
from workflow.local.pipeline import build_input, synthetic_options
from workflow.naming import execution_input

DATA = {
    "TrainingData": "s3://b/p/data/synthetic-x/train/",
    "ValidationData": "s3://b/p/data/synthetic-x/validation/",
    "TestData": "s3://b/p/data/synthetic-x/test/",
    "TestImages": "s3://b/p/data/synthetic-x/test/images/",
}


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the defaults, not a workflow.yaml of the working directory


def _config(**overrides: object):
    return load_config(None, environ={}, overrides=overrides)


def test_local_input_carries_the_local_gate_threshold() -> None:
    config = _config(**{"gate.threshold": 0.5, "local.gate_threshold": 0.25})
    document = build_input(config, "abc1234", DATA, image_uri="local/mask-r-cnn:abc1234")
    assert document["GateThreshold"] == 0.25
    assert document["EndpointPollSeconds"] == config.local.poll_seconds
    assert document["HyperParameters"] == {
        **config.training.hyperparameters,
        **config.local.hyperparameters,
    }
    assert {key: document[key] for key in DATA} == DATA
    # the AWS input of the same configuration differs in values only
    aws = execution_input(config, "abc1234", image_uri="local/mask-r-cnn:abc1234")
    assert aws["GateThreshold"] == 0.5
    assert set(aws) == set(document)


def test_default_local_gate_holds_the_demo_model_to_a_real_bar() -> None:
    document = build_input(_config(), "abc1234", DATA)
    # the demo model scores about 0.3 held-out segm mAP, an untrained one 0 (bench/results)
    assert document["GateThreshold"] == 0.2 and "ImageUri" not in document


def test_a_bad_local_gate_threshold_is_a_configuration_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^defaults: local.gate_threshold = 2.0 .* is out of range \(expected 0 to 1\)$",
    ):
        _config(**{"local.gate_threshold": 2})


def test_synthetic_options_name_every_key_of_local_dataset() -> None:
    config = _config()
    assert synthetic_options(config) == [
        "--train", "2000", "--validation", "16", "--test", "32", "--size", "96",
        "--seed", "0", "--train-shapes", "2", "5",
    ]  # fmt: skip
    # a null range is left out: the generator's 0-4 shapes of the held-out splits
    assert "--train-shapes" not in synthetic_options(
        _config(**{"local.dataset.train_shapes": None})
    )


def test_synthetic_options_generate_what_generate_does_with_the_same_keys(tmp_path) -> None:
    config = _config(**{"local.dataset": {"train": 3, "validation": 1, "test": 2, "size": 48}})
    assert synthetic_main([str(tmp_path / "cli"), *synthetic_options(config)]) == 0
    generate(tmp_path / "api", **config.local.dataset.model_dump(mode="json"))
    for split in ("train", "validation", "test"):
        cli = (tmp_path / "cli" / split / "annotations.json").read_text()
        assert cli == (tmp_path / "api" / split / "annotations.json").read_text()
