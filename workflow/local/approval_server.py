"""The approval HTTP API on 127.0.0.1, so the links of a local approval email work too.

With ``--approve manual`` the local runtime starts this server and gives its URL to the approval
Lambda (``APPROVAL_API_URL``); the email in the outbox then carries links a browser on this
machine can open. Each request becomes the API Gateway (HTTP API, payload 2.0) event that
``workflow.lambdas.approval.api_handler`` gets on AWS, so the local run exercises the same signed,
expiring, GET-confirms/POST-decides flow.

Every standard method reaches the handler (which answers 405 to all but GET and POST); a
`Content-Length` that is not a number, or is over `MAX_BODY_BYTES`, is refused before the body
is read (400, 413), a body without `Content-Length` gets 411, and a connection that sends nothing
for `READ_TIMEOUT_SECONDS` is closed, so a stalled client holds its thread only that long.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

# The approval form posts four short fields; nothing legitimate comes near this.
MAX_BODY_BYTES = 64 * 1024
READ_TIMEOUT_SECONDS = 10
# RFC 9110 section 9 and PATCH (RFC 5789): these reach the handler; an unknown method is 501.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_DIGITS = re.compile(r"[0-9]{1,12}")

ApiHandler = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def api_event(method: str, target: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """Build the API Gateway v2 event of one HTTP request."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items() if v}
    return {
        "version": "2.0",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "queryStringParameters": query or None,
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": body.decode("utf-8", errors="replace") if body else None,
        "isBase64Encoded": False,
        "requestContext": {
            "http": {
                "method": method,
                "path": parts.path,
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            }
        },
    }


class ApprovalServer:
    """A loopback HTTP server that hands every request to the approval API handler.

    Args:
        handle: ``handle(event) -> {"statusCode", "headers", "body"}``.
    """

    def __init__(self, handle: ApiHandler) -> None:
        self._handle = handle
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = READ_TIMEOUT_SECONDS  # socket timeout of every read: no endless stalls

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("approval server: " + format, *args)

            def _reply(self, status: int, headers: Mapping[str, Any], body: str) -> None:
                data = body.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(str(key), str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _refuse(self, status: int, sentence: str) -> None:
                self.close_connection = True  # the unread body must not be taken as a request
                headers = {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}
                self._reply(status, headers, sentence + "\n")

            def _read_body(self) -> bytes | None:
                """The body, or None after refusing a bad or oversized length."""
                declared = self.headers.get("Content-Length")
                if declared is None:
                    if self.headers.get("Transfer-Encoding"):
                        self._refuse(411, "send the form with a Content-Length header.")
                        return None
                    return b""
                if not _DIGITS.fullmatch(declared.strip()):
                    self._refuse(
                        400,
                        f"Content-Length {declared[:40]!r} is not a number of bytes; "
                        "send the form from the approval page.",
                    )
                    return None
                length = int(declared)
                if length > MAX_BODY_BYTES:
                    self._refuse(
                        413,
                        f"the body of {length} bytes is over the limit of {MAX_BODY_BYTES}; "
                        "send the form from the approval page.",
                    )
                    return None
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                body = self._read_body()
                if body is None:
                    return
                event = api_event(self.command, self.path, body, dict(self.headers.items()))
                try:
                    response = outer._handle(event)
                except Exception:
                    logger.exception("the approval API handler failed")
                    response = {"statusCode": 500, "headers": {}, "body": "internal error"}
                self._reply(
                    int(response.get("statusCode", 500)),
                    response.get("headers") or {},
                    str(response.get("body") or ""),
                )

        for method in METHODS:
            setattr(Handler, f"do_{method}", Handler._serve)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="approval-api", daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApprovalServer:
        """Start serving in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
