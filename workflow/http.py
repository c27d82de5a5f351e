"""The kit's one HTTP client helper (on requests): POST a body, GET a JSON document or a 200.

Used for the model servers the kit starts or reaches (``/invocations``, ``/ping``,
``/execution-parameters``). Errors become `HttpError`: the status and the start of the answer
when the server answered, else why it could not be reached; callers turn it into their own
sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow.errors import WorkflowError

DETAIL_CHARACTERS = 300


class HttpError(WorkflowError):
    """A request failed: ``status`` is the HTTP status, or None when nothing answered."""

    def __init__(self, url: str, status: int | None, detail: str) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        what = f"HTTP {status} from {url}" if status is not None else f"{url} did not answer"
        super().__init__(f"{what}: {detail}")


def post_bytes(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bytes:
    """POST ``body`` and return the answer's body.

    Raises:
        HttpError: The server answered 4xx/5xx (``detail``: the start of its answer), or it
            could not be reached or timed out (``status`` None).
    """
    import requests  # the [local] extra; the CLI's start path (CodeBuild) does not install it

    try:
        response = requests.post(url, data=body, headers=dict(headers), timeout=timeout)
    except requests.RequestException as exc:
        raise HttpError(url, None, str(exc)) from exc
    if response.status_code >= 400:
        detail = response.content[:DETAIL_CHARACTERS].decode("utf-8", errors="replace")
        raise HttpError(url, response.status_code, detail)
    return response.content


def answers_ok(url: str, timeout: float = 2.0) -> bool:
    """GET ``url``; True when it answered 200 (a health check such as ``/ping``)."""
    import requests

    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document; None when the request fails or the answer is not JSON."""
    import requests

    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError):
        return None


__all__ = ["HttpError", "get_json", "post_bytes"]
