"""An image that is not the kit's: the Docker command lines, the engine checks and the decision of
what runs, with a scripted Docker CLI (no process starts here)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from workflow.local.docker_cli import (
    DockerCli,
    DockerError,
    ForeignImage,
    serve_command,
    train_command,
)
from workflow.local.engine import TaskFailed
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.sagemaker_docker import ContainerServer, image_target, train_process
from workflow.local.store import LocalStore

OTHER = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1"
LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"


@dataclasses.dataclass(frozen=True)
class ScriptedDocker(DockerCli):
    """Answers each ``docker`` call from a table keyed by its first arguments."""

    answers: tuple[tuple[tuple[str, ...], int, str, str], ...] = ()
    calls: list[tuple[str, ...]] = dataclasses.field(default_factory=list)

    def call(self, *args: str, timeout: float | None = None) -> Any:
        self.calls.append(args)
        for prefix, code, out, err in self.answers:
            if args[: len(prefix)] == prefix:
                return subprocess.CompletedProcess(["docker", *args], code, out, err)
        raise AssertionError(f"unexpected docker call {args}")


ENGINE = ((("version",), 0, "28.2.2\n", ""),)


def _sm(tmp_path: Path, docker: DockerCli, **settings: Any) -> LocalSageMaker:
    kit = tmp_path / "kit"
    (kit / "mask_r_cnn").mkdir(parents=True)
    return LocalSageMaker(
        store=LocalStore(tmp_path / "root"),
        resolve_image=lambda uri: kit,
        settings=SageMakerSettings(kit_repository="mask-r-cnn", **settings),
        log_sink=None,
        docker=docker,
    )


def test_training_runs_the_image_with_train_on_the_job_tree_as_opt_ml(tmp_path):
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-dockerfile.html:
    # SageMaker runs `docker run image train`; the tree is /opt/ml.
    base = tmp_path / "jobs" / "j" / "algo-1"
    command = train_command(
        ForeignImage(OTHER), "c1", base, "algo-1", ["algo-1", "algo-2"],
        {"TRAINING_JOB_NAME": "j", "A": "secret"},
    )  # fmt: skip
    assert command == [
        "docker", "run", "--name", "c1", "--label", "org.mlops.local-sagemaker=train",
        "--network", "host", "--add-host", "algo-1:127.0.0.1", "--add-host", "algo-2:127.0.0.1",
        "--volume", f"{base}/input:/opt/ml/input", "--volume", f"{base}/model:/opt/ml/model",
        "--volume", f"{base}/output:/opt/ml/output", "--env", "A", "--env", "TRAINING_JOB_NAME",
        OTHER, "train",
    ]  # fmt: skip
    assert "secret" not in " ".join(command)  # values travel in the CLI's environment


def test_checkpoints_are_mounted_only_when_configured(tmp_path):
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html: LocalPath defaults
    # to /opt/ml/checkpoints.
    def volumes(params: dict[str, Any]) -> list[str]:
        command = train_process(
            SageMakerSettings(), ForeignImage(OTHER), tmp_path, "algo-1", ["algo-1"], {}, params
        ).command
        return [command[i + 1] for i, a in enumerate(command) if a == "--volume"]

    assert [v.rsplit(":", 1)[1] for v in volumes({})] == [
        "/opt/ml/input",
        "/opt/ml/model",
        "/opt/ml/output",
    ]
    configured = volumes({"CheckpointConfig": {"S3Uri": "s3://b/c/"}})
    assert configured[-1] == f"{tmp_path}/checkpoints:/opt/ml/checkpoints"
    moved = volumes({"CheckpointConfig": {"S3Uri": "s3://b/c/", "LocalPath": "/ckpt"}})
    assert moved[-1] == f"{tmp_path}/checkpoints:/ckpt"


def test_network_isolation_gives_the_training_container_no_network(tmp_path):
    command = train_command(ForeignImage(OTHER), "c", tmp_path, "algo-1", ["algo-1"], {}, True)
    assert command[command.index("--network") + 1] == "none"
    assert command[command.index("--hostname") + 1] == "algo-1"


def test_the_training_environment_is_the_requests_and_sagemakers_not_the_kits(tmp_path):
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
    environment = {
        "TRAINING_JOB_NAME": "j", "TRAINING_JOB_ARN": "arn:j", "MASTER_PORT": "1", "MY": "v",
    }  # fmt: skip
    process = train_process(
        SageMakerSettings(), ForeignImage(OTHER), tmp_path, "algo-1", ["algo-1"], environment,
        {"Environment": {"MY": "v"}, "EnableNetworkIsolation": True},
    )  # fmt: skip
    assert process.container is not None and process.container.startswith(
        "sagemaker-local-train-j-algo-1-"
    )
    flags = [process.command[i + 1] for i, a in enumerate(process.command) if a == "--env"]
    assert flags == ["MY", "TRAINING_JOB_ARN", "TRAINING_JOB_NAME"]
    assert process.environ["TRAINING_JOB_ARN"] == "arn:j" and process.environ["MY"] == "v"
    assert process.command[-2:] == [OTHER, "train"]
    kit = train_process(
        SageMakerSettings(python="py"), tmp_path, tmp_path / "t", "algo-1", ["algo-1"], {}, {}
    )
    assert kit.command == ["py", str(tmp_path / "mask_r_cnn" / "train")] and kit.container is None
    assert kit.environ["SAGEMAKER_BASE_DIR"] == str(tmp_path / "t")


def test_serving_binds_to_the_port_or_publishes_8080(tmp_path):
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html:
    # `docker run image serve`, the model in /opt/ml/model, the server on port 8080.
    model = tmp_path / "model"
    published = serve_command(ForeignImage(OTHER), "s", model, 4321, {"X": "1"})
    assert published == [
        "docker", "run", "--rm", "--name", "s", "--label", "org.mlops.local-sagemaker=serve",
        "--publish", "127.0.0.1:4321:8080", "--volume", f"{model}:/opt/ml/model",
        "--env", "X", OTHER, "serve",
    ]  # fmt: skip
    # An engine without a bridge network: the host's network, the port through the variable
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipeline-real-time.html).
    bound = serve_command(ForeignImage(OTHER, True), "s", model, 4321, {}, publish=False)
    assert bound[bound.index("--network") + 1] == "host" and "--publish" not in bound


def test_a_foreign_image_runs_in_docker_when_an_engine_has_it(tmp_path):
    docker = ScriptedDocker(
        answers=(*ENGINE, (("image", "inspect"), 0, json.dumps({LABEL: "true"}), ""))
    )
    assert image_target(_sm(tmp_path, docker), OTHER) == ForeignImage(OTHER, binds_to_port=True)
    assert docker.calls[-1] == ("image", "inspect", "--format", "{{json .Config.Labels}}", OTHER)
    assert not any(call[0] == "pull" for call in docker.calls)


def _refusal(tmp_path: Path, docker: DockerCli) -> str:
    with pytest.raises(TaskFailed) as exc:
        image_target(_sm(tmp_path, docker), OTHER)
    assert exc.value.error == "SageMaker.AmazonSageMakerException"
    return str(exc.value.cause)


def test_a_missing_image_is_never_pulled(tmp_path):
    docker = ScriptedDocker(answers=(*ENGINE, (("image",), 1, "", "No such image")))
    assert _refusal(tmp_path, docker) == (
        f"image {OTHER} is not in the local Docker engine, and the local runtime never pulls "
        f"images; run 'docker pull {OTHER}' or 'docker build -t {OTHER} <folder>' against that "
        "engine, then start the job again."
    )
    assert [call[0] for call in docker.calls] == ["version", "image"]


def test_without_an_engine_the_job_fails_naming_the_image_and_both_fixes(tmp_path):
    refused = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is it running?"
    docker = ScriptedDocker(answers=((("version",), 1, "", f"Client: 28\n{refused}\n"),))
    assert _refusal(tmp_path, docker) == (
        f"image {OTHER} is not this kit's image (local/... or the ECR repository mask-r-cnn), "
        f"and no Docker engine answers ({refused.rstrip('?')}?) to run it as SageMaker would; "
        "start Docker (or set DOCKER_HOST) with the image in it, or map the image to a folder "
        "holding mask_r_cnn/train and mask_r_cnn/serve with local.images "
        f"({{'{OTHER}': 'path/to/folder'}})."
    )


def test_the_kits_image_and_mapped_images_never_ask_docker(tmp_path):
    docker = ScriptedDocker()
    mapped = tmp_path / "mapped"
    (mapped / "mask_r_cnn").mkdir(parents=True)
    sm = _sm(tmp_path, docker, images={OTHER: str(mapped)})
    assert (
        image_target(sm, "123.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:abc") == tmp_path / "kit"
    )
    assert image_target(sm, OTHER) == mapped
    assert docker.calls == []


def test_an_image_on_8080_needs_a_bridge_network(tmp_path):
    docker = ScriptedDocker(answers=((("network", "inspect"), 1, "", "no such network"),))
    with pytest.raises(TaskFailed) as exc:
        ContainerServer.launch(docker, ForeignImage(OTHER), tmp_path, tmp_path / "log", {})
    assert exc.value.cause.startswith(f"image {OTHER} serves on port 8080 (it has no label {LABEL}")
    assert not (tmp_path / "log").exists()


def test_docker_errors_are_sentences(tmp_path):
    docker = ScriptedDocker(answers=((("image",), 1, "", ""),))
    with pytest.raises(DockerError, match=r"never pulls images; run 'docker pull x'"):
        docker.image("x")
