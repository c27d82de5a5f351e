"""A bounded HTTP load generator for `POST /invocations`, run as its own process.

```
python -m bench.load_client --url http://127.0.0.1:PORT --image test.png \
    --concurrency 4 --requests 40 --max-seconds 60
```

sends the image `--requests` times from `--concurrency` threads (a new connection per request,
as gunicorn's sync workers close each one), stopping early after `--max-seconds`, and prints one
JSON object on stdout: `{"latencies_ms": [...], "completed", "errors", "error_samples",
"elapsed_s", "requests_per_s", "concurrency"}`. Only the standard library is imported, so the
client starts fast and stays small beside the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def post_once(
    host: str, port: int, body: bytes, content_type: str, timeout: float
) -> tuple[float, int]:
    """Send one request; return (latency in ms, HTTP status) after reading the whole answer."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/invocations",
            body=body,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        status = response.status
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000, status


def run_load(
    url: str,
    body: bytes,
    content_type: str,
    *,
    concurrency: int,
    requests: int,
    max_seconds: float,
    timeout: float = 120,
) -> dict[str, Any]:
    """Send `requests` requests from `concurrency` threads, stopping after `max_seconds`."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= requests or time.perf_counter() >= deadline:
                    return
                issued += 1
            try:
                latency, status = post_once(host, port, body, content_type, timeout)
            except OSError as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                if status == 200:
                    latencies.append(latency)
                else:
                    errors.append(f"HTTP {status}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "latencies_ms": [round(v, 3) for v in latencies],
        "completed": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "elapsed_s": round(elapsed, 4),
        "requests_per_s": round(len(latencies) / elapsed, 4) if elapsed > 0 else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints the JSON result on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.load_client", description=__doc__)
    parser.add_argument("--url", required=True, help="base URL of the server")
    parser.add_argument("--image", type=Path, required=True, help="the image file to send")
    parser.add_argument("--content-type", default=None, help="default: from the file suffix")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1 or args.max_seconds <= 0:
        parser.error("--concurrency and --requests must be >= 1 and --max-seconds > 0")
    try:
        body = args.image.read_bytes()
    except OSError as exc:
        print(
            f"error: cannot read --image {args.image}: {exc}; pass an image file", file=sys.stderr
        )
        return 2
    content_type = args.content_type or (
        "image/png" if args.image.suffix.lower() == ".png" else "image/jpeg"
    )
    result = run_load(
        args.url,
        body,
        content_type,
        concurrency=args.concurrency,
        requests=args.requests,
        max_seconds=args.max_seconds,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
