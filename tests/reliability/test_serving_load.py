"""Serving under load: 8 concurrent clients for a bounded time on loopback.

Every request must answer 200 with predictions (zero errors), and the resident memory of the
serving tree (serve + gunicorn master + workers, sampled from /proc) must stay flat: the mean of
the last quarter of the samples may not exceed the mean of the first quarter by more than
`max(FLAT_MIB, FLAT_FRACTION * first)`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image
from reliability_kit import LiveServer, Tally

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONCURRENCY = 8
FLAT_MIB = 60.0
FLAT_FRACTION = 0.10


def load_seconds() -> float:
    """`RELIABILITY_LOAD_SECONDS` (default 20)."""
    try:
        return max(float(os.environ.get("RELIABILITY_LOAD_SECONDS", "20")), 2.0)
    except ValueError:
        return 20.0


def _requests() -> list[tuple[str, bytes, dict[str, str]]]:
    rng = np.random.default_rng(0)
    found = []
    for i, (width, height) in enumerate([(64, 48), (48, 64), (96, 72), (32, 32)]):
        pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        pixels[5 : height // 2, 5 : width // 2] = (250, 20, 20)
        image = Image.fromarray(pixels)
        for fmt in ("JPEG", "PNG"):
            buffer = io.BytesIO()
            image.save(buffer, format=fmt)
            data = buffer.getvalue()
            found.append((f"image/{fmt.lower()}", data, {}))
        body = json.dumps({"image": base64.b64encode(data).decode(), "score_threshold": 0.2})
        headers = {"X-Amzn-SageMaker-Custom-Attributes": f"score_threshold=0.{i + 1}"}
        found.append(("application/json", body.encode(), headers))
    return found


def test_concurrency_8_zero_errors_and_flat_memory(live_server: LiveServer, tally: Tally) -> None:
    seconds = load_seconds()
    bodies = _requests()
    stop = threading.Event()
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    failures: list[str] = []
    latencies: list[float] = []

    def client(index: int) -> None:
        with requests.Session() as http:
            n = index
            while not stop.is_set():
                content_type, body, headers = bodies[n % len(bodies)]
                n += 1
                started = time.monotonic()
                try:
                    reply = http.post(
                        f"{live_server.url}/invocations",
                        data=body,
                        headers={"Content-Type": content_type, **headers},
                        timeout=60,
                    )
                    ok = reply.status_code == 200 and isinstance(reply.json()["predictions"], list)
                    outcome = str(reply.status_code)
                    problem = "" if ok else f"{reply.status_code}: {reply.text[:200]}"
                except (requests.RequestException, ValueError, KeyError) as exc:
                    outcome, problem = "exception", f"{type(exc).__name__}: {exc}"
                with lock:
                    statuses[outcome] = statuses.get(outcome, 0) + 1
                    latencies.append(time.monotonic() - started)
                    if problem:
                        failures.append(problem)

    samples: list[float] = []
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(live_server.rss_mib())
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client thread hangs"

    total = sum(statuses.values())
    quarter = max(len(samples) // 4, 1)
    first = float(np.mean(samples[:quarter]))
    last = float(np.mean(samples[-quarter:]))
    allowed = max(FLAT_MIB, FLAT_FRACTION * first)
    row = tally.row("serving: load", f"concurrency {CONCURRENCY} for {seconds:.0f} s")
    for outcome, count in statuses.items():
        row.tried += count
        row.outcomes[outcome] = row.outcomes.get(outcome, 0) + count
    row.broke += len(failures)
    p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0.0, 0.0)
    row.notes.append(
        f"requests={total} rps={total / seconds:.1f} p50={p50 * 1000:.0f}ms "
        f"p95={p95 * 1000:.0f}ms rss_first_quarter={first:.0f}MiB "
        f"rss_last_quarter={last:.0f}MiB samples={len(samples)}"
    )
    memory = tally.row("serving: load", "RSS flat (last vs first quarter)")
    memory.count("flat" if last - first <= allowed else "grew", last - first > allowed)
    memory.notes.append(f"first={first:.0f} last={last:.0f} allowed_growth={allowed:.0f} MiB")

    assert total >= CONCURRENCY, f"only {total} requests were answered in {seconds} s"
    assert not failures, f"{len(failures)} of {total} requests failed, e.g. {failures[:3]}"
    assert last - first <= allowed, (
        f"resident memory grew from {first:.0f} to {last:.0f} MiB under load "
        f"(allowed {allowed:.0f} MiB): samples {[round(s) for s in samples]}"
    )
    assert live_server.ping() == 200
