"""The gunicorn worker class of `serve`: threads, deadlines for slow clients, JSON errors.

`serve` runs gunicorn with `--worker-class mask_r_cnn.http_worker.JsonThreadWorker`, gunicorn's
threaded worker (`gthread`) with two changes:

1. **Slow clients are cut off.** With the `sync` worker one client that sends its headers a byte
   at a time held a whole worker, so `/ping` timed out (slowloris). Here each worker serves
   `--threads` connections at once, and a connection is shut down when its request line and
   headers take longer than `HEADER_TIMEOUT_SECONDS`, or the whole request (body and inference
   included) takes longer than gunicorn's `--timeout` (which the `sync` worker enforced by
   killing the worker; a request still running 10 s after its connection was shut down is stuck
   in the model, and the worker is replaced as before). gthread itself only bounds the wait for
   a connection's first byte.
2. **Errors of the HTTP layer are JSON.** A request gunicorn refuses before the app sees it (bad
   request line or header, 414, 431, 417, 501, malformed chunked framing) is answered with the
   service's documented `{"error": "<sentence>"}` instead of gunicorn's HTML page.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

HEADER_TIMEOUT_SECONDS = 10.0
STUCK_GRACE_SECONDS = 10.0
FIX = "send a well-formed HTTP/1.1 request: GET /ping or POST /invocations with the image."

# gunicorn's refusals of a request and the answer each gets; any other ParseException is a 400.
CLIENT_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (
        errors.LimitRequestLine,
        414,
        "URI Too Long",
        "the request line is too long; shorten the URL.",
    ),
    (
        errors.LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "the request headers are too many or too large; send fewer and shorter headers.",
    ),
    (
        errors.ExpectationFailed,
        417,
        "Expectation Failed",
        "the Expect header cannot be met; send no Expect header or 'Expect: 100-continue'.",
    ),
    (
        errors.UnsupportedTransferCoding,
        501,
        "Not Implemented",
        "the Transfer-Encoding is not supported; send the body with Content-Length or chunked.",
    ),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", "proxy requests are not accepted here."),
)


def error_response(exc: BaseException) -> tuple[int, str, str]:
    """The (status, reason, sentence) that answers an error raised before the app ran."""
    if isinstance(exc, (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)):
        return 500, "Internal Server Error", "internal error; see the endpoint's logs."
    for kind, status, reason, sentence in CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, reason, sentence
    if isinstance(exc, errors.ParseException):
        detail = " ".join(str(exc).split())[:200]
        return (
            400,
            "Bad Request",
            f"the request is malformed ({type(exc).__name__}: {detail}); {FIX}",
        )
    return 500, "Internal Server Error", "internal error; see the endpoint's logs."


def error_bytes(status: int, reason: str, sentence: str) -> bytes:
    """A complete HTTP/1.1 response carrying `{"error": sentence}`; the connection closes."""
    body = json.dumps({"error": sentence}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with request deadlines and JSON error pages."""

    alive: bool  # gunicorn's Worker: False once the worker should exit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set up the worker; deadlines are tracked per connection being served."""
        super().__init__(*args, **kwargs)
        # conn -> (header deadline, whole-request deadline, closed by us)
        self._deadlines: dict[Any, tuple[float, float, bool]] = {}
        self._deadlines_lock = threading.Lock()

    def handle(self, conn: Any) -> Any:
        """Serve one request of `conn` (a worker thread) under both deadlines."""
        now = time.monotonic()
        whole = now + max(self.cfg.timeout, 1)
        with self._deadlines_lock:
            self._deadlines[conn] = (now + HEADER_TIMEOUT_SECONDS, whole, False)
        try:
            return super().handle(conn)
        finally:
            with self._deadlines_lock:
                self._deadlines.pop(conn, None)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """The headers are in: from now on only the whole-request deadline applies."""
        with self._deadlines_lock:
            if conn in self._deadlines:
                _, whole, closed = self._deadlines[conn]
                self._deadlines[conn] = (float("inf"), whole, closed)
        return super().handle_request(req, conn)

    def murder_keepalived(self, force: bool = False) -> None:
        """gthread's periodic clean-up (about once a second), plus the slow requests."""
        super().murder_keepalived(force)
        self.cut_slow_requests(time.monotonic())

    def cut_slow_requests(self, now: float) -> None:
        """Shut down connections past a deadline; restart the worker if one does not let go.

        A thread blocked reading a slow client returns as soon as its socket is shut down. One
        that still holds its connection `STUCK_GRACE_SECONDS` later is stuck in the model
        (the sync worker was killed by gunicorn's `--timeout` then); the worker stops, and
        gunicorn's arbiter replaces it once it no longer reports (within `--timeout`).
        """
        late, stuck = [], []
        with self._deadlines_lock:
            for conn, (head, whole, closed) in self._deadlines.items():
                if closed and now > whole:
                    stuck.append(conn)
                elif not closed and now > min(head, whole):
                    late.append(conn)
                    self._deadlines[conn] = (float("inf"), now + STUCK_GRACE_SECONDS, True)
        for conn in late:
            self.log.warning("closing a connection from %s: request too slow", conn.client)
            # the thread blocked reading it gets end-of-file and lets go
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if stuck and self.alive:
            self.log.error(
                "a request ran past MODEL_SERVER_TIMEOUT and did not stop when its connection "
                "was closed; restarting this worker"
            )
            self.alive = False

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer an error raised before (or outside) the app with the JSON error body."""
        status, reason, sentence = error_response(exc)
        if status >= 500:
            self.log.exception("error handling a request: %s", exc)
        else:
            self.log.warning("refused a request from %s: %s (%s)", (addr or ("",))[0], status, exc)
        try:
            util.write_nonblock(client, error_bytes(status, reason, sentence))
        except Exception:
            self.log.debug("failed to send the error response")
