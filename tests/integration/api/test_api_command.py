"""`python -m workflow api` as a user runs it: URL first on stdout, logs on stderr, SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _command(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "container")])}
    return subprocess.Popen(
        [sys.executable, "-m", "workflow", "--set", f"local.root={tmp_path / 'root'}", "api", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_serves_until_sigterm(tmp_path):
    import boto3

    process = _command(tmp_path)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        sfn = boto3.client(
            "stepfunctions", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="any", aws_secret_access_key="any",
        )  # fmt: skip
        assert sfn.list_state_machines()["stateMachines"] == []
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert f"local AWS API on {url}" in stderr
    assert "stopped" in stderr


def test_refuses_a_non_loopback_host(tmp_path):
    process = _command(tmp_path, "--host", "0.0.0.0")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stdout == ""
    assert stderr.strip().splitlines() == [
        "error: --host '0.0.0.0' is not a loopback address; the local AWS API binds only "
        "127.0.0.1, ::1 or localhost (use --host 127.0.0.1)"
    ]


def test_a_taken_port_is_one_error_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _command(tmp_path, "--port", str(port))
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); pick another "
        "--port, or 0 for a free one"
    ]
