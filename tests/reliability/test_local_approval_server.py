"""The local approval server under odd HTTP: every method, bad lengths, stalled connections.

The server hands each request to the real approval API handler (which answers 405 to every
method but GET and POST before it reads any setting), over raw sockets on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from reliability_kit import Tally

from workflow.lambdas import approval
from workflow.local import approval_server
from workflow.local.approval_server import ApprovalServer

pytestmark = [pytest.mark.integration]

AREA = "local approval server"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApprovalServer]:
    monkeypatch.setattr(approval_server, "READ_TIMEOUT_SECONDS", 1, raising=False)
    running = ApprovalServer(lambda event: approval.api_handler(event, None, environ={})).start()
    yield running
    running.stop()


def raw(server: ApprovalServer, request: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes and return all the server sends until it closes (or `timeout`)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def status_of(response: bytes) -> int | None:
    first = response.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else None


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PATCH", "TRACE", "PUT", "DELETE"])
def test_every_other_method_answers_405(server: ApprovalServer, tally: Tally, method: str) -> None:
    response = requests.request(method, f"{server.url}/approval?id=x", timeout=5)
    broke = response.status_code != 405 or response.headers.get("Allow") != "GET, POST"
    tally.row(AREA, "HEAD/OPTIONS/PATCH/TRACE/PUT/DELETE").count(str(response.status_code), broke)
    assert not broke, (method, response.status_code, response.headers)
    if method == "HEAD":
        assert response.content == b""


@pytest.mark.parametrize(
    ("length", "status"), [("abc", 400), ("-1", 400), ("1e3", 400), ("9" * 30, 400),
                           (str(10**9), 413), (" 12x", 400)]
)  # fmt: skip
def test_bad_content_length_gets_an_answer(
    server: ApprovalServer, tally: Tally, length: str, status: int
) -> None:
    request = (
        f"POST /approval HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\nid=1"
    ).encode()
    started = time.monotonic()
    response = raw(server, request)
    answered = status_of(response)
    broke = answered != status or time.monotonic() - started > 4
    tally.row(AREA, "bad Content-Length (abc, -1, 30 digits, 1 GB)").count(str(answered), broke)
    assert not broke, (length, response[:300])
    assert b"Content-Length" in response or b"over the limit" in response


def test_chunked_body_without_length_gets_411(server: ApprovalServer, tally: Tally) -> None:
    request = (
        b"POST /approval HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nid=1\r\n"
    )
    answered = status_of(raw(server, request))
    tally.row(AREA, "chunked body").count(str(answered), answered != 411)
    assert answered == 411


def test_stalled_connections_are_closed_and_the_server_answers(
    server: ApprovalServer, tally: Tally
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    stalled: list[Any] = []
    try:
        for i in range(20):
            sock = socket.create_connection((host, int(port)), timeout=5)
            # half a request line, half a header block, or a body shorter than announced
            sock.sendall(
                [b"GET /appr", b"POST /approval HTTP/1.1\r\nHost: x\r\n",
                 b"POST /approval HTTP/1.1\r\nContent-Length: 100\r\n\r\nid="][i % 3]
            )  # fmt: skip
            stalled.append(sock)
        # the server still answers while they stall
        assert requests.request("PATCH", f"{server.url}/approval", timeout=5).status_code == 405
        # and closes each of them after its read timeout (1 s here)
        deadline = time.monotonic() + 10
        closed = 0
        for sock in stalled:
            sock.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                sock.recv(65536)  # b"" (closed) or a 408/400 answer before closing
                closed += 1
            except TimeoutError:
                pass
        broke = closed != len(stalled)
        tally.row(AREA, "stalled connections (slowloris)").count(f"closed {closed}", broke)
        assert not broke, f"{len(stalled) - closed} of {len(stalled)} still held after 10 s"
    finally:
        for sock in stalled:
            sock.close()
