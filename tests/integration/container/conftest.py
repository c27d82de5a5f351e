"""Fixtures for the container's process-level tests: SageMaker trees, one trained model, a server.

Everything runs on the CPU with a MobileNet backbone, the "fast" RPN/RoI settings and images of
at most 96 px. `trained_model` trains once per session and the serving tests reuse it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import (
    TINY_HYPERPARAMETERS,
    child_environ,
    free_port,
    start_serve,
    synthetic_dataset,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
PROGRAMS = REPO_ROOT / "container" / "mask_r_cnn"


def make_tree(
    base: Path,
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path | None],
    resource: Mapping[str, Any] | None = None,
) -> Path:
    """Lay out a SageMaker tree under `base`; a channel mapped to None is an empty folder."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    (config / "inputdataconfig.json").write_text(
        json.dumps({name: {"TrainingInputMode": "File"} for name in channels})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps(dict(resource or {"current_host": "algo-1", "hosts": ["algo-1"]}))
    )
    for name, source in channels.items():
        target = base / "input" / "data" / name
        if source is None:
            target.mkdir(parents=True)
        else:
            shutil.copytree(source, target)
    return base


def run_train(base: Path, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `container/mask_r_cnn/train` as SageMaker would, on the tree at `base`."""
    return subprocess.run(
        [sys.executable, str(PROGRAMS / "train")],
        env=child_environ(SAGEMAKER_BASE_DIR=str(base), **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic COCO splits: train 4, validation 2, test 3 images of at most 96 px."""
    root = tmp_path_factory.mktemp("data")
    return synthetic_dataset(root)


@pytest.fixture
def tiny_hp() -> dict[str, str]:
    """The tiny CPU hyperparameters (a fresh copy)."""
    return dict(TINY_HYPERPARAMETERS)


@pytest.fixture
def ml_tree(tmp_path: Path, synthetic_data: Path) -> Callable[..., Path]:
    """Factory: `ml_tree(hyperparameters=None, channels=None, name="ml")` → a SageMaker tree."""

    def make(
        hyperparameters: Mapping[str, str] | None = None,
        channels: Mapping[str, Path | None] | None = None,
        name: str = "ml",
        resource: Mapping[str, Any] | None = None,
    ) -> Path:
        return make_tree(
            tmp_path / name,
            TINY_HYPERPARAMETERS if hyperparameters is None else hyperparameters,
            {"training": synthetic_data / "train"} if channels is None else channels,
            resource,
        )

    return make


@dataclass(frozen=True)
class TrainedModel:
    """The session's trained model: its SageMaker tree and the training log."""

    base: Path
    log: str
    returncode: int


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, synthetic_data: Path) -> TrainedModel:
    """Train once (2 steps, with validation) as a subprocess; reused by the serving tests."""
    base = make_tree(
        tmp_path_factory.mktemp("trained") / "ml",
        {**TINY_HYPERPARAMETERS, "score_threshold": "0.3", "one_label_per_object": "true"},
        {"training": synthetic_data / "train", "validation": synthetic_data / "validation"},
    )
    result = run_train(base, SOURCE_COMMIT="0123abc", TRAINING_JOB_NAME="mrcnn-test-job")
    return TrainedModel(base=base, log=result.stderr + result.stdout, returncode=result.returncode)


@dataclass(frozen=True)
class Server:
    """A running `serve` process."""

    url: str
    process: subprocess.Popen[str]
    log_path: Path


def start_server(base: Path, log_path: Path, **extra: str) -> Server:
    """Start `serve` (gunicorn alone unless `MASK_R_CNN_NGINX="1"`) on a free loopback port; wait for /ping."""
    port = free_port()
    settings = {
        "SAGEMAKER_BASE_DIR": str(base),
        "SAGEMAKER_BIND_TO_HOST": "127.0.0.1",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "MODEL_SERVER_WORKERS": "1",
        "MASK_R_CNN_NGINX": "0",
    }
    env = child_environ(**{**settings, **extra})
    process = start_serve(PROGRAMS, env, log_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return Server(url=url, process=process, log_path=log_path)
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"serve did not answer /ping within 180 s:\n{log_path.read_text()}")


def stop_server(process: subprocess.Popen[str]) -> int:
    """SIGTERM the server and wait for it (SIGKILL after 30 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass(frozen=True)
class Processes:
    """Helpers the tests use to run the programs (fixtures, so tests never import conftest)."""

    programs: Path
    environ: Callable[..., dict[str, str]]
    run_train: Callable[..., subprocess.CompletedProcess[str]]
    start_server: Callable[..., Server]
    stop_server: Callable[[subprocess.Popen[str]], int]
    free_port: Callable[[], int]


@pytest.fixture
def processes() -> Processes:
    """`train`/`serve` process helpers."""
    return Processes(
        programs=PROGRAMS,
        environ=child_environ,
        run_train=run_train,
        start_server=start_server,
        stop_server=stop_server,
        free_port=free_port,
    )


@pytest.fixture(scope="session")
def server(
    trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`serve` on the session's trained model."""
    if trained_model.returncode != 0:
        pytest.fail(f"training failed:\n{trained_model.log[-3000:]}")
    running = start_server(trained_model.base, tmp_path_factory.mktemp("serve") / "serve.log")
    yield running
    stop_server(running.process)
