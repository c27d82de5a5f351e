"""The Docker engine that runs images other than the kit's, through the ``docker`` CLI.

An image that is neither the kit's own nor mapped by ``local.images`` runs as SageMaker runs it:
``docker run <image> train`` with the job's tree mounted at ``/opt/ml``
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-dockerfile.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html)
and ``docker run <image> serve`` with the model in ``/opt/ml/model``, answering on port 8080
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html).

The engine is the one the CLI finds (``DOCKER_HOST``, else its default socket); every call has a
short timeout. Images are never pulled (registries may be unreachable, and a local run must not
fetch code behind the user's back): a missing image is one sentence naming ``docker pull`` and
``docker build``. This module holds the CLI calls and the command lines; the processes are started
by the SageMaker handlers (`workflow.local.sagemaker_docker`).
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# The label by which an inference image says it listens on SAGEMAKER_BIND_TO_PORT instead of 8080
# (https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipeline-real-time.html).
BIND_TO_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
SERVING_PORT = 8080
CONTAINER_ROOT = "/opt/ml"
# Marks the containers the local runtime starts (``docker ps --filter label=...``).
LOCAL_LABEL = "org.mlops.local-sagemaker"


class DockerError(Exception):
    """A Docker call that cannot go on; the message is one sentence with the fix."""


@dataclass(frozen=True)
class ForeignImage:
    """An image present in the local Docker engine, run as SageMaker runs it.

    Attributes:
        uri: The image URI, as the request names it (and as the engine knows it).
        binds_to_port: The image carries ``BIND_TO_PORT_LABEL=true``: its server listens on
            ``SAGEMAKER_BIND_TO_PORT``, so it can share the host's network.
    """

    uri: str
    binds_to_port: bool = False

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class DockerCli:
    """The ``docker`` CLI with short timeouts.

    Attributes:
        executable: The CLI (found on ``PATH``).
        timeout: Seconds any quick call (version, inspect, rm) may take.
    """

    executable: str = "docker"
    timeout: float = 10.0

    def call(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``docker <args>`` and return the finished process (never raises on its status).

        Raises:
            FileNotFoundError: No CLI is installed.
            subprocess.TimeoutExpired: The engine did not answer in time.
        """
        return subprocess.run(
            [self.executable, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
        )

    def unavailable(self) -> str | None:
        """Why no engine answers (a clause naming the cause), or ``None`` when one does."""
        try:
            result = self.call("version", "--format", "{{.Server.Version}}")
        except FileNotFoundError:
            return f"no Docker CLI ({self.executable!r}) is installed"
        except subprocess.TimeoutExpired:
            return f"the Docker engine did not answer within {self.timeout:g} s"
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no answer"])[-1]
            return f"no Docker engine answers ({first.rstrip('.')})"
        return None

    def image(self, uri: str) -> ForeignImage:
        """Return the image as the engine has it; never pull it.

        Raises:
            DockerError: The engine has no such image.
        """
        try:
            result = self.call("image", "inspect", "--format", "{{json .Config.Labels}}", uri)
        except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
            raise DockerError(f"could not inspect image {uri} with Docker: {exc}.") from exc
        if result.returncode != 0:
            raise DockerError(
                f"image {uri} is not in the local Docker engine, and the local runtime never "
                f"pulls images; run 'docker pull {uri}' or 'docker build -t {uri} <folder>' "
                "against that engine, then start the job again."
            )
        labels = json.loads(result.stdout.strip() or "null") or {}
        return ForeignImage(uri=uri, binds_to_port=str(labels.get(BIND_TO_PORT_LABEL)) == "true")

    def has_bridge(self) -> bool:
        """Whether the engine has its default bridge network (ports can be published)."""
        try:
            return self.call("network", "inspect", "bridge").returncode == 0
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return False

    def stop(self, container: str, grace: float) -> None:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace`` seconds, as SageMaker stops."""
        seconds = max(0, math.ceil(grace))
        try:
            self.call("stop", "--time", str(seconds), container, timeout=seconds + self.timeout)
        except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
            logger.warning("could not stop container %s: %s", container, exc)

    def remove(self, container: str) -> None:
        """``docker rm -f``: remove a container, running or not (gone already is fine)."""
        try:
            result = self.call("rm", "--force", container)
        except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
            logger.warning("could not remove container %s: %s", container, exc)
            return
        if result.returncode != 0 and "No such container" not in result.stderr:
            logger.warning("could not remove container %s: %s", container, result.stderr.strip())


def environment_flags(environment: Mapping[str, str]) -> list[str]:
    """``-e NAME`` per variable: the CLI copies each value from its own environment, so values
    (which may be secrets) never appear on a command line."""
    flags: list[str] = []
    for name in sorted(environment):
        flags += ["--env", name]
    return flags


def train_command(
    image: ForeignImage,
    container: str,
    base: Path,
    host: str,
    hosts: Sequence[str],
    environment: Mapping[str, str],
    isolated: bool = False,
    checkpoints: str | None = None,
    executable: str = "docker",
) -> list[str]:
    """The ``docker run`` of one training host: ``<image> train`` on ``base``'s folders.

    ``input``, ``model`` and ``output`` are mounted under ``/opt/ml``, and ``checkpoints`` at
    ``CheckpointConfig.LocalPath`` only when the job has a ``CheckpointConfig``
    (https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html).

    The hosts share the machine's network (the engine may have no bridge); each host name of
    ``resourceconfig.json`` resolves to loopback. ``EnableNetworkIsolation`` gives no network.

    Args:
        image: The image.
        container: The container's name.
        base: The host's tree (``input/config``, ``input/data/<channel>``, ``model``, ``output``,
            ``checkpoints``).
        host: This host (``algo-1``).
        hosts: Every host of the job.
        environment: The variables SageMaker sets (their values travel in the CLI's environment).
        isolated: ``EnableNetworkIsolation``.
        checkpoints: Where the container sees ``base/checkpoints``, or ``None``.
        executable: The Docker CLI.
    """
    command = [executable, "run", "--name", container, "--label", f"{LOCAL_LABEL}=train"]
    if isolated:
        command += ["--network", "none", "--hostname", host]
    else:
        command += ["--network", "host"]
        for name in hosts:
            command += ["--add-host", f"{name}:127.0.0.1"]
    for folder in ("input", "model", "output"):
        command += ["--volume", f"{base / folder}:{CONTAINER_ROOT}/{folder}"]
    if checkpoints:
        command += ["--volume", f"{base / 'checkpoints'}:{checkpoints}"]
    return [*command, *environment_flags(environment), image.uri, "train"]


def serve_command(
    image: ForeignImage,
    container: str,
    model_dir: Path,
    port: int,
    environment: Mapping[str, str],
    publish: bool = True,
    executable: str = "docker",
) -> list[str]:
    """The ``docker run`` of a serving container answering on ``127.0.0.1:<port>``.

    ``publish``: the container listens on 8080 in its own network, published on the loopback
    ``port`` through the engine's bridge network. Otherwise (an engine without a bridge) it shares
    the host's network and listens on ``SAGEMAKER_BIND_TO_PORT``, which ``environment`` must hold
    and the image must honour (``BIND_TO_PORT_LABEL``).
    """
    command = [executable, "run", "--rm", "--name", container, "--label", f"{LOCAL_LABEL}=serve"]
    if publish:
        command += ["--publish", f"127.0.0.1:{port}:{SERVING_PORT}"]
    else:
        command += ["--network", "host"]
    command += ["--volume", f"{model_dir}:{CONTAINER_ROOT}/model", *environment_flags(environment)]
    return [*command, image.uri, "serve"]
