"""The one HTTP helper: bodies, statuses and unreachable servers (an in-process server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workflow.http import HttpError, get_json, post_bytes


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 200 if self.headers["Content-Type"] == "application/json" else 415
        answer = body if status == 200 else b"unsupported content type " + b"x" * 400
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        answer = b'{"MaxPayloadInMB": 6}' if self.path == "/json" else b"not json"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_post_returns_the_body_and_reports_statuses(url: str) -> None:
    assert post_bytes(url, b'{"a": 1}', {"Content-Type": "application/json"}, 5) == b'{"a": 1}'
    with pytest.raises(HttpError) as info:
        post_bytes(url, b"x", {"Content-Type": "text/plain"}, 5)
    assert info.value.status == 415
    assert (
        info.value.detail.startswith("unsupported content type") and len(info.value.detail) == 300
    )
    with pytest.raises(HttpError) as info:
        post_bytes(f"http://127.0.0.1:{_closed_port()}", b"x", {}, 5)
    assert info.value.status is None
    assert "did not answer" in str(info.value)


def test_get_json(url: str) -> None:
    assert get_json(url + "/json") == {"MaxPayloadInMB": 6}
    assert get_json(url + "/other") is None
    assert get_json(f"http://127.0.0.1:{_closed_port()}") is None
