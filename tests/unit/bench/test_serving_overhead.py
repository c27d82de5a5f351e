from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench import serving_overhead
from bench.common import BenchSettings, execute
from bench.load_client import run_load


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        status = 200 if body == b"image" else 400
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"predictions": []}).encode())


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_load_client_is_bounded_in_count(echo_server: str) -> None:
    result = run_load(echo_server, b"image", "image/png", concurrency=3, requests=7, max_seconds=30)
    assert result["completed"] == 7 and result["errors"] == 0
    assert len(result["latencies_ms"]) == 7 and result["requests_per_s"] > 0


def test_load_client_counts_errors_and_stops_in_time(echo_server: str) -> None:
    result = run_load(echo_server, b"bad", "image/png", concurrency=1, requests=3, max_seconds=30)
    assert result["completed"] == 0 and result["errors"] == 3
    assert result["error_samples"][0] == "HTTP 400"
    late = run_load(echo_server, b"image", "image/png", concurrency=1, requests=5, max_seconds=1e-9)
    assert late["completed"] == 0


def test_load_client_command_prints_json(echo_server: str, tmp_path: Path, repo_root: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(b"image")
    argv = [sys.executable, "-m", "bench.load_client", "--url", echo_server, "--image", str(image)]
    result = subprocess.run(
        [*argv, "--requests", "2"], cwd=repo_root, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["completed"] == 2
    missing = subprocess.run(
        [*argv[:-1], str(tmp_path / "nope.png")], cwd=repo_root, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "cannot read --image" in missing.stderr


def test_free_port_is_bindable() -> None:
    import socket

    port = serving_overhead.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(serving_overhead.NAME, serving_overhead.TITLE, serving_overhead.run, settings)
    document = check_result_file(settings.out_dir / "serving_overhead.json", "serving_overhead")
    p50, absolute, p95, rps1, rps4 = document["figures"]
    assert p95["result"] >= p50["result"]
    assert absolute["target"] == "<= 60 ms" and absolute["result"] == p50["result"]
    assert p50["target"] == "ratio <= 1.10" and p50["ratio"] > 0
    assert rps1["unit"] == rps4["unit"] == "req/s" and rps4["result"] > 0
    assert document["settings"]["workers"] == 1 and document["settings"]["threads"] == 1
    assert set(document["details"]["p50_ms"]) == {"raw", "predict", "flask", "http"}
    assert document["details"]["concurrency_4"]["completed"] == 4
    assert document["details"]["cpu_ms_per_request"]["http"]["n"] == 1
    assert document["settings"]["warm_up_requests"] == 1
    assert document["details"]["fastest_ratio"] > 0


def test_tree_cpu_seconds_counts_a_process_tree() -> None:
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", code + "time.sleep(30)"])
    try:
        own = None
        for _ in range(300):
            own = serving_overhead.tree_cpu_seconds(busy.pid)
            if own is not None and own >= 0.25:
                break
            time.sleep(0.1)
        assert own is not None and own >= 0.25
        assert serving_overhead.tree_cpu_seconds(os.getpid()) >= own  # the child is counted
    finally:
        busy.kill()
        busy.wait()
    assert serving_overhead.tree_cpu_seconds(2**22 + 7) is None
