from __future__ import annotations

import json
from pathlib import Path

import pytest
from mask_r_cnn.env import SageMakerEnv
from mask_r_cnn.errors import UserInputError


def _tree(base: Path, resource: dict[str, object] | None = None) -> Path:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"epochs": "2"}))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"training": {"TrainingInputMode": "File"}})
    )
    if resource is not None:
        (config / "resourceconfig.json").write_text(json.dumps(resource))
    (base / "input" / "data" / "training").mkdir(parents=True)
    return base


def test_paths_derive_from_sagemaker_base_dir(tmp_path: Path) -> None:
    base = _tree(tmp_path / "ml", {"current_host": "algo-2", "hosts": ["algo-2", "algo-1"]})
    env = SageMakerEnv.from_environ(
        {"SAGEMAKER_BASE_DIR": str(base), "TRAINING_JOB_NAME": "job-1", "SOURCE_COMMIT": "abc"}
    )
    assert env.model_dir == base / "model"
    assert env.failure_file == base / "output" / "failure"
    assert env.checkpoint_dir == base / "checkpoints"
    assert env.channel_dir("training") == base / "input" / "data" / "training"
    assert env.has_channel("training") and not env.has_channel("validation")
    assert env.hyperparameters == {"epochs": "2"}
    assert env.input_data_config["training"]["TrainingInputMode"] == "File"
    assert env.hosts == ("algo-1", "algo-2")
    assert env.host_rank == 1
    assert (env.training_job_name, env.source_commit) == ("job-1", "abc")


def test_default_base_dir_is_opt_ml() -> None:
    env = SageMakerEnv.from_environ({})
    assert env.base_dir == Path("/opt/ml")
    assert env.hosts == ("algo-1",)
    assert env.master_port == 29500


def test_master_override(tmp_path: Path) -> None:
    env = SageMakerEnv.from_environ(
        {"SAGEMAKER_BASE_DIR": str(tmp_path), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "23456"}
    )
    assert (env.master_addr, env.master_port) == ("127.0.0.1", 23456)


def test_bad_master_port_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"MASTER_PORT='http' is not a TCP port"):
        SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path), "MASTER_PORT": "http"})


def test_current_host_must_be_listed(tmp_path: Path) -> None:
    base = _tree(tmp_path, {"current_host": "algo-3", "hosts": ["algo-1"]})
    with pytest.raises(UserInputError, match="current_host 'algo-3' is not one of hosts"):
        SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(base)})


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    base = _tree(tmp_path)
    (base / "input" / "config" / "hyperparameters.json").write_text("{not json")
    with pytest.raises(UserInputError, match=r"hyperparameters\.json is not valid JSON"):
        SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(base)})


def test_processes_per_host_override(tmp_path: Path) -> None:
    env = SageMakerEnv.from_environ(
        {"SAGEMAKER_BASE_DIR": str(tmp_path), "MASK_R_CNN_PROCESSES_PER_HOST": "2"}
    )
    assert env.processes_per_host == 2
    assert (
        SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)}).processes_per_host is None
    )
    with pytest.raises(
        UserInputError, match=r"MASK_R_CNN_PROCESSES_PER_HOST='0' is not a whole number"
    ):
        SageMakerEnv.from_environ(
            {"SAGEMAKER_BASE_DIR": str(tmp_path), "MASK_R_CNN_PROCESSES_PER_HOST": "0"}
        )
