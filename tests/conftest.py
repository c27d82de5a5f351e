"""Shared fixtures: a clean, offline environment for every test.

- Every `MLOPS_*`, `AWS_*`, `SM_*`, `SAGEMAKER_*` variable of the caller is removed, and fake
  credentials plus a region are set, so nothing can reach a real account by accident.
- A connection to any address outside the loopback range fails at once (no network in tests).
- `--run-aws` enables the tests marked `aws` (real account; never run in CI).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV_PREFIXES = ("MLOPS_", "AWS_", "SM_", "SAGEMAKER_", "CODEBUILD_", "TRAINING_JOB_")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-aws", action="store_true", help="run tests against a real AWS account")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-aws"):
        return
    skip_aws = pytest.mark.skip(reason="needs a real AWS account: pass --run-aws")
    for item in items:
        if "aws" in item.keywords:
            item.add_marker(skip_aws)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX socket path
        return True
    if not isinstance(address, tuple) or not address:
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: connection to {address!r} refused")
        real_connect(self, address)  # type: ignore[arg-type]

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: connection to {address!r} refused")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
