"""The router in front of a local endpoint's serving processes (``python -m workflow.local.router``).

A local endpoint's ``Url`` is this router's: it forwards each request to one of the fleets in
the endpoint record's ``Routes`` (``[{"VariantName", "EndpointConfigName", "Url", "Weight"}]``)
with a probability proportional to its weight, as SageMaker's front end splits an endpoint's
traffic (https://docs.aws.amazon.com/sagemaker/latest/dg/model-ab-testing.html), and answers
``X-Amzn-Invoked-Production-Variant``. Every ``/invocations`` request becomes one data point of
the endpoint's CloudWatch metrics (`workflow.local.endpoint_metrics`), and every answered one
goes through the data capture of the configuration of the fleet that answered it
(`workflow.local.data_capture`), written before the answer is sent, so a client that has its
answer finds the capture file (SageMaker uploads within minutes). SageMaker captures at the endpoint,
whichever client called it
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html).

The router is its own process in its own session, so the endpoint outlives the run that created
it (as its serving processes do). It re-reads the record when the file changes (one ``stat`` per
request), so a deployment shifts traffic by rewriting the record, and it exits by itself when the
record is gone (the endpoint was deleted) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from workflow.local.data_capture import DataCapture, Invocation
from workflow.local.endpoint_metrics import append_invocation
from workflow.local.processes import (
    base_environ,
    free_port,
    import_root,
    process_cmdline,
    start_logged,
)
from workflow.local.sagemaker import CONFIGS, Records
from workflow.local.store import LocalStore

logger = logging.getLogger(__name__)

ROUTER_MODULE = "workflow.local.router"
VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
FORWARD_TIMEOUT_SECONDS = 60.0  # SageMaker's model response timeout
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade")
)


@dataclass(frozen=True)
class Route:
    """One fleet behind the endpoint and its share of the traffic."""

    variant: str
    url: str
    weight: float
    endpoint_config: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record's form."""
        return {
            "VariantName": self.variant,
            "EndpointConfigName": self.endpoint_config,
            "Url": self.url,
            "Weight": self.weight,
        }


class RoutingTable:
    """Routes and their cumulative weights; :meth:`choose` picks one for a uniform draw."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = [r for r in routes if r.weight > 0]
        self._bounds: list[float] = []
        total = 0.0
        for route in self.routes:
            total += route.weight
            self._bounds.append(total)
        self.total = total

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RoutingTable:
        """The table of an endpoint record's ``Routes``."""
        routes = [
            Route(
                variant=str(r.get("VariantName") or "AllTraffic"),
                url=str(r["Url"]),
                weight=float(r.get("Weight", 1.0)),
                endpoint_config=str(r.get("EndpointConfigName") or ""),
            )
            for r in record.get("Routes") or []
            if r.get("Url")
        ]
        return cls(routes)

    def choose(self, draw: float) -> Route | None:
        """The route of a draw in ``[0, 1)``; ``None`` when no route takes traffic."""
        if not self.routes:
            return None
        index = bisect.bisect_right(self._bounds, draw * self.total)
        return self.routes[min(index, len(self.routes) - 1)]

    def shares(self) -> dict[str, float]:
        """Each route URL's share of the traffic (0..1)."""
        return {r.url: r.weight / self.total for r in self.routes} if self.total else {}


class _Table:
    """The routing table of the record file, re-read when the file changes."""

    def __init__(self, record_path: Path) -> None:
        self.path = record_path
        self._stamp: tuple[int, int] | None = None
        self._table = RoutingTable([])
        self.endpoint_config = ""  # the record's EndpointConfigName
        self._lock = threading.Lock()

    def current(self) -> RoutingTable | None:
        """The table, or ``None`` when the record is gone."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp != self._stamp:
            with self._lock:
                try:
                    record = json.loads(self.path.read_text())
                except (OSError, ValueError):  # replaced between stat and read: keep the old one
                    return self._table
                self._table = RoutingTable.from_record(record)
                self.endpoint_config = str(record.get("EndpointConfigName") or "")
                self._stamp = stamp
        return self._table


class _Backends(threading.local):
    """Keep-alive connections to the fleets, one set per server thread."""

    def __init__(self) -> None:
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def send(
        self, url: str, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> http.client.HTTPResponse:
        for attempt in (1, 2):  # a kept connection the fleet closed meanwhile: reconnect once
            connection = self.connections.get(url)
            if connection is None:
                parsed = urllib.parse.urlsplit(url)
                connection = http.client.HTTPConnection(
                    parsed.hostname or "127.0.0.1", parsed.port, timeout=FORWARD_TIMEOUT_SECONDS
                )
                connection.connect()
                if connection.sock is not None:  # no 40 ms delayed-ACK stall per request
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connections[url] = connection
            try:
                connection.request(method, path, body=body, headers=dict(headers))
                return connection.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError):
                connection.close()
                del self.connections[url]
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class _Capture:
    """The data capture of the endpoint's answered invocations, per answering configuration."""

    def __init__(self, store_root: Path, endpoint: str) -> None:
        store = LocalStore(store_root)
        self.records = Records(store)
        self.capture = DataCapture(store)
        self.endpoint = endpoint
        self._configs: dict[str, dict[str, Any] | None] = {}  # configurations never change

    def __call__(self, route: Route, record_config: str, invocation: Invocation) -> None:
        name = route.endpoint_config or record_config
        if name not in self._configs:
            try:
                self._configs[name] = self.records.get(CONFIGS, name) if name else None
            except Exception as exc:  # an unreadable configuration captures nothing
                logger.warning("cannot read endpoint configuration %r: %s", name, exc)
                self._configs[name] = None
        self.capture.capture(self._configs[name], invocation)  # logs, never raises


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: RouterServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length) if length else b"")

    def _forward(self, body: bytes) -> None:
        started = time.perf_counter()
        table = self.server.table.current()
        route = table.choose(random.random()) if table is not None else None
        if route is None:
            self._answer(503, b'{"message": "the endpoint has no fleet taking traffic"}', {})
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        model_started = time.perf_counter()
        try:
            response = self.server.backends.send(route.url, self.command, self.path, body, headers)
            data = response.read()
            status = response.status
            answer_headers = {
                k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
            }
        except OSError as exc:
            data = json.dumps({"message": f"the serving process did not answer: {exc}"}).encode()
            status, answer_headers = 502, {"Content-Type": "application/json"}
        model_us = (time.perf_counter() - model_started) * 1e6
        answer_headers[VARIANT_HEADER] = route.variant
        invocation = self.command == "POST" and self.path.startswith("/invocations")
        if invocation and status < 300 and self.server.capture is not None:
            self.server.capture(
                route,
                self.server.table.endpoint_config,
                Invocation(
                    endpoint=self.server.capture.endpoint,
                    variant=route.variant,
                    request=body,
                    request_type=self.headers.get("Content-Type", "application/octet-stream"),
                    response=data,
                    response_type=answer_headers.get("Content-Type", "application/json"),
                    inference_id=self.headers.get(INFERENCE_ID_HEADER),
                ),
            )
        self._answer(status, data, answer_headers)
        if invocation:
            total_us = (time.perf_counter() - started) * 1e6
            point = {
                "Timestamp": time.time(),
                "VariantName": route.variant,
                "EndpointConfigName": route.endpoint_config,
                "StatusCode": status,
                "ModelLatency": round(model_us),
                "OverheadLatency": round(max(total_us - model_us, 0.0)),
            }
            try:
                append_invocation(self.server.metrics, point)
            except OSError as exc:  # metrics never fail an answered request
                logger.warning("cannot record a data point in %s: %s", self.server.metrics, exc)

    def _answer(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RouterServer(ThreadingHTTPServer):
    """The router's HTTP server (``port`` 0: a free one); :func:`serve` runs it in the process."""

    daemon_threads = True

    def __init__(
        self, port: int, record_path: Path, metrics: Path, store_root: Path | None = None
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.table = _Table(record_path)
        self.backends = _Backends()
        self.metrics = metrics
        self.capture = None if store_root is None else _Capture(store_root, record_path.stem)


def serve(
    port: int,
    record_path: Path,
    metrics: Path,
    store_root: Path | None = None,
    check_seconds: float = 1.0,
) -> None:
    """Serve until SIGTERM or until the record file is gone (captures into ``store_root``)."""
    server = RouterServer(port, record_path, metrics, store_root)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(check_seconds):
            if not record_path.exists():
                logger.info("the record %s is gone; the router stops", record_path)
                break
        server.shutdown()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watcher = threading.Thread(target=watch, name="router-watch", daemon=True)
    watcher.start()
    logger.info("router on 127.0.0.1:%d for %s", port, record_path)
    server.serve_forever(poll_interval=0.2)
    server.server_close()


@dataclass(frozen=True)
class RouterProcess:
    """A started router: its pid, port and URL."""

    pid: int
    port: int

    @property
    def url(self) -> str:
        """Base URL of the router (the endpoint's URL)."""
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls, python: str, record_path: Path, metrics: Path, log_path: Path, store_root: Path
    ) -> RouterProcess:
        """Start a router for the endpoint record ``record_path`` in its own session."""
        port = free_port()
        package_parent = str(import_root())
        path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
        popen = start_logged(
            [python, "-m", ROUTER_MODULE, "--port", str(port), "--record", str(record_path),
             "--metrics", str(metrics), "--store", str(store_root)],
            log_path,
            base_environ({"PYTHONPATH": path}),
        )  # fmt: skip
        # The record owns the router from now on; a daemon thread reaps it whoever stops it.
        threading.Thread(target=popen.wait, name=f"reap-{popen.pid}", daemon=True).start()
        return cls(pid=popen.pid, port=port)


def wait_listening(port: int, timeout: float) -> bool:
    """Wait until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def is_router(pid: int) -> bool:
    """Guard against a reused pid: the process must run this module."""
    cmdline = process_cmdline(pid)
    return cmdline is None or ROUTER_MODULE.encode() in cmdline


def main(argv: Sequence[str] | None = None) -> None:
    """The router process's entry point."""
    parser = argparse.ArgumentParser(prog=f"python -m {ROUTER_MODULE}", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the endpoint's record file")
    parser.add_argument("--metrics", type=Path, required=True, help="its data points' folder")
    parser.add_argument("--store", type=Path, help="the local store the data capture writes to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(args.port, args.record, args.metrics, args.store)


if __name__ == "__main__":
    main(sys.argv[1:])
