from __future__ import annotations

import json
import socket
import threading

import pytest
from gunicorn.http import errors
from mask_r_cnn.http_worker import (
    STUCK_GRACE_SECONDS,
    JsonThreadWorker,
    error_bytes,
    error_response,
)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.LimitRequestLine(10000, 4094), 414),
        (errors.LimitRequestHeaders("too many"), 431),
        (errors.ExpectationFailed("200-ok"), 417),
        (errors.UnsupportedTransferCoding("gzip"), 501),
        (errors.InvalidRequestLine("GARBAGE"), 400),
        (errors.InvalidHeaderName("Bad Header"), 400),
        (errors.InvalidChunkSize(b"ZZ"), 400),
        (errors.InvalidResponseHeader("X-A", "a\nb"), 500),
        (RuntimeError("boom"), 500),
    ],
)
def test_server_layer_errors_map_to_a_status_and_one_sentence(exc: Exception, status: int) -> None:
    got, reason, sentence = error_response(exc)
    assert got == status
    assert "\n" not in sentence and sentence.endswith(".")
    response = error_bytes(got, reason, sentence)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": sentence}


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    def error(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


class _Conn:
    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.client = ("127.0.0.1", 5000)

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


def _worker() -> JsonThreadWorker:
    worker = object.__new__(JsonThreadWorker)  # no gunicorn arbiter: only the deadline logic
    worker._deadlines = {}
    worker._deadlines_lock = threading.Lock()
    worker.log = _Log()
    worker.alive = True
    return worker


def test_slow_headers_are_cut_and_a_request_stuck_in_the_model_restarts_the_worker() -> None:
    worker = _worker()
    slow_headers, stuck, fine = _Conn(), _Conn(), _Conn()
    try:
        worker._deadlines = {
            slow_headers: (10.0, 60.0, False),  # headers not in after 10 s
            stuck: (float("inf"), 60.0, False),  # headers in, request past --timeout
            fine: (float("inf"), 1000.0, False),
        }
        worker.cut_slow_requests(now=20.0)
        assert slow_headers.peer.recv(10) == b""  # shut down: the reading thread gets EOF
        del worker._deadlines[slow_headers]  # and lets go of it
        assert worker.alive
        worker.cut_slow_requests(now=61.0)
        assert stuck.peer.recv(10) == b""
        worker.cut_slow_requests(now=61.0 + STUCK_GRACE_SECONDS - 1)
        assert worker.alive
        worker.cut_slow_requests(now=61.0 + STUCK_GRACE_SECONDS + 1)  # still held: stuck in torch
        assert not worker.alive
        assert any("restarting this worker" in line for line in worker.log.lines)
        fine.peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            fine.peer.recv(10)  # the request within its deadlines was left alone
    finally:
        for conn in (slow_headers, stuck, fine):
            conn.close()
