"""Which code runs for an image, and the Docker containers of images that are not the kit's.

:func:`image_target` decides, for the image a job or model names:

1. ``local.images`` maps it: the folder's ``mask_r_cnn/train`` and ``mask_r_cnn/serve`` run;
2. it is the kit's (``local/...`` or the ECR repository ``ecr_repository``), or no repository is
   configured: the kit's code for that image runs (the resolver);
3. any other image runs in Docker as SageMaker runs it (`workflow.local.docker_cli`) when an
   engine answers and holds the image; otherwise the job fails with one sentence naming the image
   and the fixes. The kit's code never runs under another image's name.

A serving container is a :class:`ContainerServer`: the attached ``docker run ... serve`` is the
process the endpoint records (its pid, ``serve`` last on its command line), and the container's
name is recorded beside it, so that every way of stopping an endpoint also removes its container.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow.local.docker_cli import (
    DockerCli,
    DockerError,
    ForeignImage,
    serve_command,
    train_command,
)
from workflow.local.processes import base_environ, free_port, start_logged
from workflow.local.sagemaker import (
    SAGEMAKER_ERROR,
    LocalSageMaker,
    SageMakerSettings,
    ServeProcess,
    task_failed,
)

# The variables SageMaker sets in a training container besides the request's ``Environment``
# (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
TRAINING_VARIABLES = ("TRAINING_JOB_NAME", "TRAINING_JOB_ARN")


def image_target(sm: LocalSageMaker, image_uri: str) -> Path | ForeignImage:
    """What runs an image: the folder of its code, or the image itself in Docker.

    Raises:
        TaskFailed: ``SageMaker.AmazonSageMakerException`` with the image and the fix.
    """
    settings = sm.settings
    mapped = settings.images.get(image_uri)
    if mapped is not None:
        folder = Path(mapped).expanduser()
        if not (folder / "mask_r_cnn").is_dir():
            raise task_failed(
                SAGEMAKER_ERROR,
                f"local.images maps image {image_uri} to {folder}, which has no mask_r_cnn/ "
                "folder; point it at a folder holding mask_r_cnn/train and mask_r_cnn/serve.",
            )
        return folder
    if settings.kit_repository and not is_kit_image(image_uri, settings.kit_repository):
        problem = sm.docker.unavailable()
        if problem is not None:
            raise task_failed(
                SAGEMAKER_ERROR,
                f"image {image_uri} is not this kit's image (local/... or the ECR repository "
                f"{settings.kit_repository}), and {problem} to run it as SageMaker would; start "
                "Docker (or set DOCKER_HOST) with the image in it, or map the image to a folder "
                "holding mask_r_cnn/train and mask_r_cnn/serve with local.images "
                f"({{'{image_uri}': 'path/to/folder'}}).",
            )
        try:
            return sm.docker.image(image_uri)
        except DockerError as exc:
            raise task_failed(SAGEMAKER_ERROR, str(exc)) from None
    try:
        return sm.resolve_image(image_uri)
    except Exception as exc:
        raise task_failed(SAGEMAKER_ERROR, str(exc)) from exc


def is_kit_image(image_uri: str, repository: str) -> bool:
    """Whether ``image_uri`` is a local build (``local/...``) or an image of ``repository``."""
    if image_uri.startswith("local/"):
        return True
    path = image_uri.split("/", 1)[1] if "/" in image_uri else image_uri
    return re.split(r"[:@]", path, maxsplit=1)[0] == repository


def container_name(kind: str, *parts: str) -> str:
    """A new container name (``sagemaker-local-<kind>-<parts>-<id>``), valid for Docker."""
    text = "-".join(("sagemaker-local", kind, *parts, uuid.uuid4().hex[:8]))
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", text)


@dataclass(frozen=True)
class TrainProcess:
    """How one training host starts: its command line, environment and container (if any)."""

    command: list[str]
    environ: dict[str, str]
    container: str | None = None


def train_process(
    settings: SageMakerSettings,
    target: Path | ForeignImage,
    base: Path,
    host: str,
    hosts: Sequence[str],
    environment: Mapping[str, str],
    params: Mapping[str, Any],
) -> TrainProcess:
    """The process of one training host: the kit's ``train`` program, or ``docker run ... train``.

    Args:
        settings: The local SageMaker's settings (its Python).
        target: What :func:`image_target` answered.
        base: The host's tree (``SAGEMAKER_BASE_DIR``, or ``/opt/ml`` in the container).
        host: The host's name.
        hosts: Every host's name.
        environment: The request's ``Environment`` with the job's variables (the kit's programs
            also get ``MASTER_ADDR``/``MASTER_PORT``).
        params: The ``CreateTrainingJob`` request.
    """
    if isinstance(target, Path):
        program = target / "mask_r_cnn" / "train"
        return TrainProcess(
            [settings.python, str(program)],
            base_environ({**environment, "SAGEMAKER_BASE_DIR": str(base)}),
        )
    job = str(environment.get("TRAINING_JOB_NAME", "job"))
    variables = {
        **{str(k): str(v) for k, v in (params.get("Environment") or {}).items()},
        **{name: environment[name] for name in TRAINING_VARIABLES if name in environment},
    }
    name = container_name("train", job, host)
    isolated = bool(params.get("EnableNetworkIsolation")) and len(hosts) == 1
    checkpoint = params.get("CheckpointConfig") or {}
    local_path = checkpoint.get("LocalPath") or "/opt/ml/checkpoints"
    checkpoints = str(local_path) if checkpoint.get("S3Uri") else None
    command = train_command(target, name, base, host, hosts, variables, isolated, checkpoints)
    return TrainProcess(command, base_environ(variables), name)


@dataclass
class ContainerServer(ServeProcess):
    """A serving container, driven through its attached ``docker run`` process.

    Port 8080 of the container is published on a free loopback port; an engine without a bridge
    network (the project's private one) runs it on the host's network instead, on that port
    through ``SAGEMAKER_BIND_TO_PORT``, which only an image with the bind-to-port label honours.
    """

    docker: DockerCli = field(default_factory=DockerCli)

    @classmethod
    def launch(
        cls,
        docker: DockerCli,
        image: ForeignImage,
        model_dir: Path,
        log_path: Path,
        environment: Mapping[str, str],
    ) -> ContainerServer:
        """Start ``<image> serve`` with ``model_dir`` as ``/opt/ml/model`` on a loopback port.

        Raises:
            TaskFailed: The image listens on 8080 and the engine cannot publish that port.
        """
        port = free_port()
        variables = {str(k): str(v) for k, v in environment.items()}
        publish = docker.has_bridge()
        if not publish and image.binds_to_port:
            variables["SAGEMAKER_BIND_TO_PORT"] = str(port)
        elif not publish:
            raise task_failed(
                SAGEMAKER_ERROR,
                f"image {image.uri} serves on port 8080 (it has no label "
                "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true), and the Docker "
                "engine has no bridge network to publish that port on a free one; add the label "
                "and listen on SAGEMAKER_BIND_TO_PORT, or use an engine with its bridge network.",
            )
        name = container_name("serve")
        command = serve_command(image, name, model_dir, port, variables, publish, docker.executable)
        popen = start_logged(command, log_path, base_environ(variables))
        return cls(
            pid=popen.pid, port=port, log_path=log_path, popen=popen, container=name, docker=docker
        )

    def stop(self, grace: float) -> None:
        """``docker stop`` (SIGTERM, SIGKILL after ``grace``), then remove the container."""
        if self.container:
            self.docker.stop(self.container, grace)
        super().stop(min(grace, 2.0))
        if self.container:
            self.docker.remove(self.container)


def start_server(
    sm: LocalSageMaker,
    target: Path | ForeignImage,
    base: Path,
    log_path: Path,
    environment: Mapping[str, str] | None = None,
) -> ServeProcess:
    """Start the serving process of a model whose files are in ``<base>/model``."""
    if isinstance(target, Path):
        return ServeProcess.start(sm.settings, target, base, log_path, environment)
    return ContainerServer.launch(sm.docker, target, base / "model", log_path, environment or {})


def remove_containers(docker: DockerCli, *names: Any) -> None:
    """Remove the named containers (``None`` and empty names are skipped)."""
    for name in names:
        if isinstance(name, str) and name:
            docker.remove(name)
