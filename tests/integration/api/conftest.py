"""Fixtures of the local AWS API tests: a served engine with tiny handlers, and boto3 clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workflow.api import ApiServer, LocalAwsApi
from workflow.local.engine import LocalEngine, TaskFailed
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.sagemaker_training import TrainingJobHandler
from workflow.local.store import LocalStore

CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
ROLE = "arn:aws:iam::123456789012:role/StepFunctionsRole"
KNOWN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/known:latest"


@dataclass
class Served:
    """A running API: its URL, engine and store, and what the tiny handlers saw."""

    url: str
    engine: LocalEngine
    store: LocalStore
    role: str = ROLE
    tokens: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def client(self, service: str = "stepfunctions", **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(**config) if config else None,
            **CREDENTIALS,
        )


def _unknown_image(uri: str) -> Path:
    raise FileNotFoundError(f"image {uri} is not a local image")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The API over an engine (time scaled 100x) with Lambda functions `echo`, `flaky`, `token`.

    ``createTrainingJob`` is the local SageMaker's; it knows no image, so every job fails the way
    a job of an image SageMaker cannot pull fails.
    """
    engine = LocalEngine(time_scale=0.01, poll_interval=0.05)
    store = LocalStore(tmp_path / "root")
    sagemaker = LocalSageMaker(
        store=store,
        resolve_image=_unknown_image,
        settings=SageMakerSettings(account_id="123456789012", stop_grace_seconds=3.0),
        log_sink=None,
    )
    state = Served(url="", engine=engine, store=store)
    lock = threading.Lock()

    def flaky(payload: Any, ctx: Any) -> Any:
        with lock:
            state.calls["flaky"] = state.calls.get("flaky", 0) + 1
            first = state.calls["flaky"] == 1
        if first:
            raise TaskFailed("Flaky", "fails on its first call")
        return {"ok": payload}

    training = TrainingJobHandler(sagemaker)
    engine.register_service(
        "sagemaker", "createTrainingJob", training.start, training.poll, training.cancel
    )
    engine.register_lambda("echo", lambda payload, ctx: {"echo": payload})
    engine.register_lambda("flaky", flaky)
    engine.register_lambda("token", lambda payload, ctx: state.tokens.append(payload["token"]))
    server = ApiServer(LocalAwsApi(engine, sagemaker)).start()
    state.url = server.url
    yield state
    server.stop()
    training.stop_all()


@pytest.fixture
def make_machine(served: Served) -> Callable[..., str]:
    """Factory: create a state machine from a dict; return its ARN."""
    import json

    counter = [0]

    def make(definition: dict[str, Any], name: str = "", **extra: Any) -> str:
        counter[0] += 1
        response = served.client().create_state_machine(
            name=name or f"machine-{counter[0]}",
            definition=json.dumps(definition),
            roleArn=ROLE,
            **extra,
        )
        return str(response["stateMachineArn"])

    return make


def wait_done(sfn: Any, arn: str, timeout: float = 30) -> dict[str, Any]:
    """Poll DescribeExecution until the execution is no longer RUNNING."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


@pytest.fixture
def wait() -> Callable[..., dict[str, Any]]:
    return wait_done
