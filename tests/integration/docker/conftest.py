"""Fixtures for the real-image tests: an answering Docker engine, the local base, the built image.

No registry is reachable, so `scripts/build-image.sh` builds on a locally made base
(`scripts/build-base-image.sh`: debootstrap + docker import) and pip-installs torch inside the
image (INSTALL_TORCH=1); the local runtime's build step can use the same script. Every build and run uses `--network host` or `--network none`, since the engine runs with
`--bridge=none` (`scripts/docker-engine.sh start`, which `.ci/run` calls). Without an answering
engine every test here is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import helpers
import pytest

REPO = Path(__file__).resolve().parents[3]
IMAGE_TAG = "mlops-test/mask-r-cnn:docker-test"
# The container tests' tiny settings, with the default warmup.
TINY_HYPERPARAMETERS = {
    key: value for key, value in helpers.TINY_HYPERPARAMETERS.items() if key != "warmup_steps"
}


@dataclass
class Docker:
    """The docker CLI bound to one engine; remembers containers to remove them at the end."""

    host: str
    containers: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def run(
        self, *args: str, timeout: float = 600, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:3])} failed:\n{result.stderr[-4000:]}")
        return result


def _engine_host() -> str:
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    script = REPO / "scripts" / "docker-engine.sh"
    return subprocess.run(
        [str(script), "host"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """The engine at $DOCKER_HOST, else at scripts/docker-engine.sh's socket; skip if none answers."""
    if shutil.which("docker") is None:
        pytest.skip(
            "no docker CLI on PATH; install docker.io (scripts/docker-engine.sh start does)"
        )
    client = Docker(_engine_host())
    try:
        answer = client.run("version", "--format", "{{.Server.Version}}", timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the Docker engine at {client.host} does not answer within 15 s")
    if answer.returncode != 0:
        pytest.skip(
            f"no Docker engine answers at {client.host}; start one with "
            "'scripts/docker-engine.sh start' (CI's .ci/run does)"
        )
    yield client
    for container in client.containers:
        client.run("rm", "-f", container, timeout=60)


@pytest.fixture(scope="session")
def image(docker: Docker) -> str:
    """container/Dockerfile built by scripts/build-image.sh (local base, torch from PyPI)."""
    started = time.monotonic()
    result = subprocess.run(
        [str(REPO / "scripts" / "build-image.sh"), IMAGE_TAG, "docker-test"],
        env=docker.env(), capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == IMAGE_TAG
    size = docker.run("image", "inspect", "--format", "{{.Size}}", IMAGE_TAG, check=True)
    sys.stderr.write(
        f"built {IMAGE_TAG} in {time.monotonic() - started:.0f} s, "
        f"{int(size.stdout.strip()) / 2**30:.2f} GiB\n"
    )
    return IMAGE_TAG


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny synthetic COCO splits written by the container's own generator."""
    root = tmp_path_factory.mktemp("data")
    subprocess.run(
        [sys.executable, "-m", "mask_r_cnn.synthetic", str(root), "--train", "4",
         "--validation", "2", "--test", "2", "--size", "96", "--seed", "0"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return root


@pytest.fixture
def sagemaker_tree(tmp_path: Path, dataset: Path) -> Callable[..., Path]:
    """Factory: a SageMaker /opt/ml tree with the training and validation channels."""

    def make(hyperparameters: dict[str, str] | None = None) -> Path:
        base = tmp_path / "opt-ml"
        config = base / "input" / "config"
        config.mkdir(parents=True)
        hps = hyperparameters if hyperparameters is not None else TINY_HYPERPARAMETERS
        (config / "hyperparameters.json").write_text(json.dumps(hps))
        channels = {"training": "train", "validation": "validation"}
        (config / "inputdataconfig.json").write_text(
            json.dumps({name: {"TrainingInputMode": "File"} for name in channels})
        )
        (config / "resourceconfig.json").write_text(
            json.dumps(
                {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
            )
        )
        for channel, split in channels.items():
            shutil.copytree(dataset / split, base / "input" / "data" / channel)
        return base

    return make


@pytest.fixture
def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    return helpers.free_port()
