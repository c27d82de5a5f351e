from __future__ import annotations

from bench import serving_overhead
from bench.load_client import run_load


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


def test_free_port_is_bindable() -> None:
    import socket

    port = serving_overhead.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
