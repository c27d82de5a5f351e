"""Router overhead: a local endpoint's request through its router against the serving process.

Set-up: a stand-in serving program (the standard library's HTTP server, answering a small JSON
body at once, so that the figure is the hop and not a model) on a free 127.0.0.1 port, and the
endpoint router (`python -m workflow.local.router`) reading a record that routes all traffic to
it, as an endpoint that was never updated. Per round, side by side: N requests straight to the
serving process, then N through the router, each from one keep-alive connection with
`TCP_NODELAY` (as botocore's urllib3 connects), with a 20 kB body like a small PNG. The figure is
the median over rounds of p50(router) - p50(direct): what the router adds to each request, which
includes its CloudWatch data point (one appended line).

Target: at most 1 ms per request (issue 13).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BenchSettings, Figure, Measurement, at_most, median, percentile, summary

NAME = "router_overhead"
TITLE = "Router hop of a local endpoint"
TARGET_MS = 1.0
BODY_BYTES = 20_000
_SERVE = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Serve(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b'{"predictions": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Serve).serve_forever()
"""


def _latencies(port: int, count: int, body: bytes) -> list[float]:
    """Milliseconds of `count` POSTs over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.connect()
    assert connection.sock is not None
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", "/invocations", body=body,
                               headers={"Content-Type": "image/png"})  # fmt: skip
            connection.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return times


def run(settings: BenchSettings) -> Measurement:
    """Measure the router's added latency (see the module docstring)."""
    from workflow.local.processes import free_port, stop_process_group
    from workflow.local.router import RouterProcess, wait_listening

    rounds = settings.count(default=5, smoke=1)
    requests = 20 if settings.smoke else 400
    body = os.urandom(BODY_BYTES)
    with tempfile.TemporaryDirectory(prefix="bench-router-") as folder:
        base = Path(folder)
        (base / "serve.py").write_text(_SERVE)
        port = free_port()
        serve = subprocess.Popen([sys.executable, str(base / "serve.py"), str(port)],
                                 start_new_session=True)  # fmt: skip
        record = base / "endpoint.json"
        route = {"VariantName": "AllTraffic", "Url": f"http://127.0.0.1:{port}", "Weight": 1.0}
        record.write_text(json.dumps({"Routes": [route]}))
        router = RouterProcess.start(
            sys.executable, record, base / "metrics", base / "router.log", base / "store"
        )
        try:
            if not (wait_listening(port, 30) and wait_listening(router.port, 30)):
                raise RuntimeError(f"the router or the stand-in did not listen; see {base}")
            _latencies(port, 20, body)
            _latencies(router.port, 20, body)
            direct: list[float] = []
            routed: list[float] = []
            added = []
            for _ in range(rounds):
                one = _latencies(port, requests, body)
                two = _latencies(router.port, requests, body)
                direct += one
                routed += two
                added.append(percentile(two, 50) - percentile(one, 50))
            points = sum(len(p.read_text().splitlines()) for p in (base / "metrics").glob("*"))
        finally:
            stop_process_group(router.pid, 3)
            stop_process_group(serve.pid, 3)
    hop = median(added)
    return Measurement(
        figures=[
            Figure(
                figure="p50 latency the router adds to a request (20 kB body, keep-alive)",
                target=f"<= {TARGET_MS:g} ms",
                result=round(hop, 3),
                unit="ms",
                ratio=round(hop / TARGET_MS, 3),
                verdict=at_most(hop, TARGET_MS),
                note=f"median over {rounds} rounds of {requests}; direct p50 "
                f"{percentile(direct, 50):.2f} ms, routed p50 {percentile(routed, 50):.2f} ms",
            )
        ],
        settings={"rounds": rounds, "requests": requests, "body_bytes": BODY_BYTES},
        details={
            "direct_ms": {k: v for k, v in summary(direct).items() if k != "values"},
            "routed_ms": {k: v for k, v in summary(routed).items() if k != "values"},
            "added_p50_ms_per_round": [round(a, 4) for a in added],
            "data_points_recorded": points,
        },
    )
