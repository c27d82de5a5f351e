"""Fixtures of the reliability suite (helpers in `reliability_kit`): the tally, a live `serve`,
the local runtime harness.

Every reliability test counts what it tried and what broke into the session's `tally`. At the end
of the session the tally is written as JSON (to `$RELIABILITY_RESULTS`, a file path, when set;
otherwise to pytest's temporary directory) and printed as a table in the terminal summary, so
the figures of docs/reliability.md come from a real run:

    RELIABILITY_RESULTS=reliability.json .venv/bin/pytest tests/reliability

`RELIABILITY_SCALE` (default 1) multiplies the number of generated cases,
`RELIABILITY_LOAD_SECONDS` (default 20) sets the length of the load test and
`RELIABILITY_CONTAINER_DIR` points the serving and training tests at another copy of
`container/` (to try a fix before it lands).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import start_serve
from reliability_kit import (
    FAST_HYPERPARAMETERS,
    FAST_LOCAL,
    PROGRAMS,
    REAL_CONTAINER,
    REPO,
    SERVE_MAX_IMAGE_PIXELS,
    SERVE_MAX_PAYLOAD_MB,
    SERVE_WORKERS,
    STAND_IN,
    Harness,
    LiveServer,
    Tally,
    child_environ,
    free_port,
    stop_process,
    write_tiny_model,
)

TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    """The session's reliability tally."""
    return TALLY


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the tally as JSON."""
    if not TALLY.rows:
        return
    target = os.environ.get("RELIABILITY_RESULTS")
    if target:
        path = Path(target)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = (
            Path(tempfile.gettempdir()) / "mlops-reliability" / f"tally-{stamp}-{os.getpid()}.json"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(TALLY.to_json(), indent=1) + "\n")
    session.config.stash[_RESULTS_PATH] = str(path)


_RESULTS_PATH = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the tally as a table."""
    if not TALLY.rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability tally")
    width = max(len(f"{r.area}: {r.what}") for r in TALLY.rows.values())
    for row in TALLY.rows.values():
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(row.outcomes.items()))
        write(
            f"{row.area + ': ' + row.what:<{width}}  tried={row.tried:<6} broke={row.broke:<4} "
            f"{outcomes}"
        )
    write(
        f"total tried={sum(r.tried for r in TALLY.rows.values())} "
        f"broke={sum(r.broke for r in TALLY.rows.values())}"
    )
    path = config.stash.get(_RESULTS_PATH, None)
    if path:
        write(f"written to {path}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`container/mask_r_cnn/serve` on a tiny untrained model, 2 gunicorn workers."""
    base = tmp_path_factory.mktemp("serve-ml")
    write_tiny_model(base / "model", source_commit="reliab1", training_job_name="reliability")
    port = free_port()
    env = child_environ(
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_HOST="127.0.0.1",
        SAGEMAKER_BIND_TO_PORT=str(port),
        MODEL_SERVER_WORKERS=str(SERVE_WORKERS),
        MODEL_SERVER_THREADS="1",
        MODEL_SERVER_TIMEOUT="60",
        SAGEMAKER_MAX_PAYLOAD_IN_MB=str(SERVE_MAX_PAYLOAD_MB),
        MASK_R_CNN_MAX_IMAGE_PIXELS=str(SERVE_MAX_IMAGE_PIXELS),
        MASK_R_CNN_NGINX="0",
    )
    log_path = base / "serve.log"
    process = start_serve(PROGRAMS, env, log_path)
    server = LiveServer(
        url=f"http://127.0.0.1:{port}",
        process=process,
        log_path=log_path,
        max_payload_bytes=SERVE_MAX_PAYLOAD_MB * 1024 * 1024,
        max_image_pixels=SERVE_MAX_IMAGE_PIXELS,
    )
    deadline = time.monotonic() + 240
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                # every worker loads its own model: wait until /ping is 200 a few times in a row
                if all(server.ping() == 200 for _ in range(4)):
                    break
            except requests.RequestException:
                pass  # not listening yet, or a worker still loading its model
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /ping in 240 s:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic splits in the run layout (test images under `test/images/`), made once."""
    from mask_r_cnn.synthetic import generate

    from workflow.local.pipeline import move_images_into_subfolder

    root = tmp_path_factory.mktemp("tiny-data")
    generate(root, train=4, validation=2, test=2, size=80, seed=3)
    move_images_into_subfolder(root / "test")
    for split in ("train", "validation", "test"):
        document = json.loads((root / split / "annotations.json").read_text())
        assert document["annotations"], f"the synthetic {split} split has no objects"
    return root


@pytest.fixture
def make_harness(tmp_path: Path, tiny_data: Path) -> Iterator[Any]:
    """Factory: `make_harness(container="stand-in"|"real", approve="auto", **config overrides)`."""
    from workflow.config import load_config
    from workflow.local.runtime import LocalRuntime

    made: list[Any] = []

    def make(container: str = "stand-in", approve: str = "auto", **overrides: Any) -> Harness:
        root = tmp_path / f"root-{len(made)}"
        settings = {
            "gate.threshold": 0,
            "endpoint.poll_seconds": 1,
            "local.poll_seconds": 1,
            "local.hyperparameters": dict(FAST_HYPERPARAMETERS),
            **FAST_LOCAL,
            **overrides,
        }
        config = load_config(REPO / "workflow.yaml", environ={}, overrides=settings)
        runtime = LocalRuntime(
            config,
            root,
            approve=approve,
            container_dir=STAND_IN if container == "stand-in" else REAL_CONTAINER,
            log_sink=None,
            time_scale=0.01,
            poll_interval=0.2,
            use_docker=False,
            stop_grace_seconds=5,
            echo=False,
        )
        runtime.install()
        made.append(runtime)
        prefix = config.s3.uri("data", "reliability")
        runtime.store.put_tree(prefix, tiny_data)
        data = {
            "TrainingData": prefix + "train/",
            "ValidationData": prefix + "validation/",
            "TestData": prefix + "test/",
            "TestImages": prefix + "test/images/",
        }
        return Harness(runtime=runtime, config=config, data=data)

    yield make
    for runtime in reversed(made):
        for execution in runtime.engine.executions:
            if not execution.done:
                execution.stop("TestEnded", "the test ended")
                execution.wait(30)
        runtime.close()
