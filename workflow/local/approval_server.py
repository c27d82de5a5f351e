"""The approval HTTP API on 127.0.0.1, so the links of a local approval email work too.

With ``--approve manual`` the local runtime starts this server and gives its URL to the approval
Lambda (``APPROVAL_API_URL``); the email in the outbox then carries links a browser on this
machine can open. Each request becomes the API Gateway (HTTP API, payload 2.0) event that
``workflow.lambdas.approval.api_handler`` gets on AWS, so the local run exercises the same signed,
expiring, GET-confirms/POST-decides flow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

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
            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("approval server: " + format, *args)

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = api_event(method, self.path, body, dict(self.headers.items()))
                try:
                    response = outer._handle(event)
                except Exception:
                    logger.exception("the approval API handler failed")
                    response = {"statusCode": 500, "headers": {}, "body": "internal error"}
                data = str(response.get("body") or "").encode()
                self.send_response(int(response.get("statusCode", 500)))
                for key, value in (response.get("headers") or {}).items():
                    self.send_header(str(key), str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

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
