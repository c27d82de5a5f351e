"""Fixtures: moto's Step Functions (executing state machines), in-process or as a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a folder without workflow.yaml (the defaults apply)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def moto_sfn(in_empty_dir: Path) -> Iterator[Any]:
    """moto's in-process AWS with Step Functions executing definitions; yields a client."""
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def make_machine():
    """Create a state machine from a dict of states on the given client; return its ARN."""

    def make(client: Any, name: str, states: dict[str, Any], start: str) -> str:
        definition = json.dumps({"StartAt": start, "States": states})
        return client.create_state_machine(name=name, definition=definition, roleArn=ROLE)[
            "stateMachineArn"
        ]

    return make


@pytest.fixture
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port) that executes state machines; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    import urllib.request

    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Build a config from the defaults plus dotted overrides (no file, no environment)."""
    from workflow.config import load_config

    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)

    def make(overrides: dict[str, Any] | None = None, **kwargs: Any):
        dotted = {key.replace("__", "."): value for key, value in kwargs.items()}
        return load_config(environ={}, overrides={**(overrides or {}), **dotted})

    return make
