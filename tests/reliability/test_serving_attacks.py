"""Attacks on the HTTP layer of a live `serve` (gunicorn alone, 2 workers, the local-run mode).

Raw requests over a socket on 127.0.0.1: JSON built to crash the parser (deep nesting, huge
integers), malformed chunked framing, requests gunicorn itself refuses (bad request line or
header, 414, 431, 417, 501), paths werkzeug would redirect, and a bounded slowloris (a few
connections trickling their headers for 14 s) while `/ping` is timed. "Broke" is a 5xx, a
dropped connection, an answer that is not a one-line JSON `{"error": ...}`, a `/ping` slower
than 2 s, or a slow connection the server still holds after its header deadline.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import pytest
from reliability_kit import LiveServer, Tally

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "serving: HTTP layer"


def exchange(server: LiveServer, request: bytes, timeout: float = 20) -> bytes:
    """Send raw bytes, half-close, and return everything the server answers."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def parse(response: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split()
    status = int(first[1]) if len(first) > 1 and first[1].isdigit() else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, body


def judge(tally: Tally, what: str, case: str, response: bytes, expected: set[int]) -> None:
    status, headers, body = parse(response)
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    broke = (
        status not in expected
        or not headers.get("content-type", "").startswith("application/json")
        or (status is not None and status >= 400 and not isinstance(error, str))
        or "\n" in str(error)
    )
    tally.row(AREA, what).count(str(status) if status is not None else "dropped", broke)
    assert not broke, f"{case}: {response[:400]!r}"


def post(path: str, body: bytes, content_type: str = "application/json", **headers: str) -> bytes:
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


DEEP = 100_000
JSON_BODIES = {
    "array nested 100000 deep": b"[" * DEEP + b"]" * DEEP,
    "object nested 100000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "image nested 100000 deep": b'{"image": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "integer of 5000 digits": b'{"image": "AAAA", "score_threshold": ' + b"9" * 5000 + b"}",
    "threshold 10**400": b'{"image": "AAAA", "score_threshold": 1' + b"0" * 400 + b"}",
    "threshold 1e400": b'{"image": "AAAA", "score_threshold": 1e400}',
    "threshold -1e309": b'{"image": "AAAA", "score_threshold": -1e309}',
}


@pytest.mark.parametrize("case", list(JSON_BODIES))
def test_hostile_json_answers_400(live_server: LiveServer, tally: Tally, case: str) -> None:
    response = exchange(live_server, post("/invocations", JSON_BODIES[case]))
    judge(tally, "JSON nested 100000 deep, integers of 5000 digits, numbers past 1e308",
          case, response, {400})  # fmt: skip


CHUNKED = {
    "bad chunk size": b"ZZ\r\nabc\r\n0\r\n\r\n",
    "missing chunk terminator": b"3\r\nabcXX0\r\n\r\n",
    "chunk longer than announced": b"2\r\nabcdef\r\n0\r\n\r\n",
    "negative chunk size": b"-5\r\nabc\r\n0\r\n\r\n",
    "huge chunk size": b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "bad chunk extension": b"3;\x00=\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", list(CHUNKED))
def test_malformed_chunked_body_answers_400(
    live_server: LiveServer, tally: Tally, case: str
) -> None:
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED[case]
    )
    judge(tally, "malformed chunked encoding", case, exchange(live_server, request), {400})


LAYER = {
    "garbage request line": (b"GARBAGE\r\n\r\n", {400}),
    "request line without version": (b"GET /ping\r\n\r\n", {400}),
    "HTTP/9.9": (b"GET /ping HTTP/9.9\r\nHost: t\r\n\r\n", {400}),
    "invalid method characters": (b"G@T /ping HTTP/1.1\r\nHost: t\r\n\r\n", {400}),
    "header without colon": (b"GET /ping HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n", {400}),
    "header name with space": (b"GET /ping HTTP/1.1\r\nBad Header: x\r\n\r\n", {400}),
    "NUL in a header value": (b"GET /ping HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", {400}),
    "obsolete line folding": (b"GET /ping HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", {400}),
    "URI of 10000 bytes (414)": (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", {414}),
    "200 headers (431)": (
        b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
        {431},
    ),
    "header of 20000 bytes (431)": (b"GET /ping HTTP/1.1\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n",
                                    {431, 400}),
    "Expect: 200-ok (417)": (b"GET /ping HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", {417}),
    "Transfer-Encoding: gzip (400 or 501)": (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", {400, 501}
    ),
    "Transfer-Encoding: gzip, chunked": (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"0\r\n\r\n",
        {400, 415, 501},  # 415: accepted, and refused by the app for its missing Content-Type
    ),
    "Content-Length and chunked": (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        {400},
    ),
    "two Content-Lengths": (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        {400},
    ),
    "Content-Length: abc": (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
                            {400}),
    # werkzeug used to answer these with an HTML 308 redirect to the merged path
    "//ping (was a redirect)": (b"GET //ping HTTP/1.1\r\nHost: t\r\n\r\n", {200, 404}),
    "//invocations (was a redirect)": (post("//invocations", b"{}"), {400, 404}),
    "/ping// (was a redirect)": (b"GET /ping// HTTP/1.1\r\nHost: t\r\n\r\n", {404}),
    "/ping/../ping": (b"GET /ping/../ping HTTP/1.1\r\nHost: t\r\n\r\n", {404}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LAYER))
def test_errors_of_the_http_layer_are_json(
    live_server: LiveServer, tally: Tally, case: str
) -> None:
    request, expected = LAYER[case]
    judge(tally, "refused by the HTTP layer (400, 414, 431, 417, 501, redirects)", case,
          exchange(live_server, request), expected)  # fmt: skip


def timed_ping(server: LiveServer) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        response = exchange(
            server, b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 10
        )
        status = parse(response)[0]
    except OSError:
        status = None
    return status, time.monotonic() - started


SLOW_CLIENTS = 6  # 3 per worker; the sync worker was held by one
TRICKLE_SECONDS = 14  # longer than the 10 s header deadline


def test_slowloris_does_not_stop_ping(live_server: LiveServer, tally: Tally) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    cut: list[float] = []
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            started = time.monotonic()
            try:
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: t\r\n")
                while not stop.is_set() and time.monotonic() - started < TRICKLE_SECONDS:
                    sock.sendall(b"X")  # one byte of an endless header, each half second
                    time.sleep(0.5)
                    readable, _, _ = select.select([sock], [], [], 0)
                    if readable and not sock.recv(1024):
                        break  # closed by the server
            except OSError:
                pass  # reset by the server
            cut.append(time.monotonic() - started)

    clients = [threading.Thread(target=trickle) for _ in range(SLOW_CLIENTS)]
    for client in clients:
        client.start()
    pings: list[tuple[int | None, float]] = []
    try:
        time.sleep(1)
        deadline = time.monotonic() + TRICKLE_SECONDS - 2
        while time.monotonic() < deadline:
            pings.append(timed_ping(live_server))
            time.sleep(0.5)
    finally:
        for client in clients:
            client.join(TRICKLE_SECONDS + 10)
        stop.set()
    slow = [p for p in pings if p[0] != 200 or p[1] > 2]
    row = tally.row(AREA, f"/ping during slowloris ({SLOW_CLIENTS} clients, {TRICKLE_SECONDS} s)")
    for status, seconds in pings:
        row.count(str(status), status != 200 or seconds > 2)
    held = [s for s in cut if s >= TRICKLE_SECONDS - 0.5]
    tally.row(AREA, "slowloris connections cut by the header deadline").tried += len(cut)
    tally.row(AREA, "slowloris connections cut by the header deadline").broke += len(held)
    assert not slow, f"{len(slow)} of {len(pings)} pings failed or took > 2 s: {slow[:5]}"
    assert len(cut) == SLOW_CLIENTS and not held, f"connection lifetimes {sorted(cut)}"
    assert timed_ping(live_server)[0] == 200
