"""Local task tokens: approvals answered from another terminal through files.

While a local run waits on a ``.waitForTaskToken`` state (the approval), it writes
``<root>/callbacks/<sha256(token)[:32]>.request.json`` (``{"token", "execution", "state",
"created"}``). ``python -m workflow approve|reject TOKEN`` calls :func:`respond_if_pending`, which
writes ``<same>.response.json``:

- ``{"status": "success", "output": {...}}`` or
- ``{"status": "failure", "error": "Rejected", "cause": "..."}``

when the request exists (and returns ``True``); otherwise the command talks to AWS. The waiting
side (:class:`CallbackWatcher`) polls the folder and forwards each response to the engine with
``send_task_success``/``send_task_failure``, then removes both files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workflow.contracts import ERROR_REJECTED
from workflow.errors import WorkflowError
from workflow.local.store import write_json_atomic

logger = logging.getLogger(__name__)

CALLBACKS_DIR = "callbacks"
APPROVE = "approve"
REJECT = "reject"


class CallbackError(WorkflowError):
    """A callback response is malformed."""


def token_key(token: str) -> str:
    """Return the file stem of a token: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def request_path(root: Path | str, token: str) -> Path:
    """Return the request file of a token."""
    return Path(root) / CALLBACKS_DIR / f"{token_key(token)}.request.json"


def response_path(root: Path | str, token: str) -> Path:
    """Return the response file of a token."""
    return Path(root) / CALLBACKS_DIR / f"{token_key(token)}.response.json"


def register_request(root: Path | str, token: str, execution: str, state: str) -> Path:
    """Record that a local execution waits on ``token`` (the waiting side calls this).

    Returns:
        The request file written.
    """
    path = request_path(root, token)
    write_json_atomic(
        path,
        {
            "token": token,
            "execution": execution,
            "state": state,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return path


def pending_requests(root: Path | str) -> list[dict[str, Any]]:
    """Return the requests that wait for an answer, oldest first."""
    folder = Path(root) / CALLBACKS_DIR
    if not folder.is_dir():
        return []
    requests = []
    for path in sorted(folder.glob("*.request.json")):
        try:
            requests.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(requests, key=lambda r: str(r.get("created", "")))


def make_response(
    outcome: str | Mapping[str, Any],
    output: Mapping[str, Any] | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """Build a response document.

    Args:
        outcome: ``"approve"``/``"success"``, ``"reject"``/``"failure"``, or a full response
            document (returned after validation).
        output: The task output on success (default ``{"Approved": true}``).
        cause: The failure cause on rejection.

    Raises:
        CallbackError: When ``outcome`` is none of these.
    """
    if isinstance(outcome, Mapping):
        document = dict(outcome)
        if document.get("status") == "success":
            return {"status": "success", "output": document.get("output", {})}
        if document.get("status") == "failure":
            return {
                "status": "failure",
                "error": str(document.get("error") or ERROR_REJECTED),
                "cause": str(document.get("cause") or ""),
            }
        raise CallbackError(
            f"callback response {document!r} has no valid 'status' "
            "(expected 'success' or 'failure')."
        )
    if outcome in (APPROVE, "approved", "success"):
        return {"status": "success", "output": dict(output or {"Approved": True})}
    if outcome in (REJECT, "rejected", "failure"):
        return {
            "status": "failure",
            "error": ERROR_REJECTED,
            "cause": cause or "The model was rejected by a reviewer.",
        }
    raise CallbackError(
        f"callback outcome {outcome!r} is unknown (expected 'approve' or 'reject')."
    )


def respond_if_pending(
    root: Path | str, token: str, outcome: str | Mapping[str, Any], cause: str | None = None
) -> bool:
    """Answer a local task token if a local run waits on it.

    Args:
        root: The local store root (``local.root``).
        token: The task token printed by the local run.
        outcome: ``"approve"``, ``"reject"``, or a response document (see module docstring).
        cause: The cause of a rejection.

    Returns:
        ``True`` when a local request existed and the response was written; ``False`` when no
        local run waits on this token (the caller should then call AWS).
    """
    if not request_path(root, token).is_file():
        return False
    write_json_atomic(response_path(root, token), make_response(outcome, cause=cause))
    return True


def read_response(root: Path | str, token: str) -> dict[str, Any] | None:
    """Return the response to ``token`` if one was written, else ``None``."""
    path = response_path(root, token)
    if not path.is_file():
        return None
    try:
        return make_response(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise CallbackError(f"callback response {path} is not valid JSON; write it again.") from exc


def clear(root: Path | str, token: str) -> None:
    """Remove the request and response files of a token."""
    request_path(root, token).unlink(missing_ok=True)
    response_path(root, token).unlink(missing_ok=True)


Deliver = Callable[[str, dict[str, Any]], None]


class CallbackWatcher:
    """Background thread that forwards response files to the engine.

    Args:
        root: The local store root.
        deliver: Called with ``(token, response)``; the runtime sends it to the engine.
        interval: Seconds between scans.
    """

    def __init__(self, root: Path | str, deliver: Deliver, interval: float = 0.2) -> None:
        self.root = Path(root)
        self._deliver = deliver
        self._interval = interval
        self._tokens: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, token: str, execution: str, state: str) -> Path:
        """Register a waiting token and start the thread if needed."""
        path = register_request(self.root, token, execution, state)
        with self._lock:
            self._tokens[token] = None
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="local-callbacks", daemon=True
                )
                self._thread.start()
        return path

    def forget(self, token: str) -> None:
        """Stop watching a token and remove its files."""
        with self._lock:
            self._tokens.pop(token, None)
        clear(self.root, token)

    def close(self) -> None:
        """Stop the thread and remove the files of every token still watched."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            tokens = list(self._tokens)
            self._tokens.clear()
        for token in tokens:
            clear(self.root, token)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                tokens = list(self._tokens)
            for token in tokens:
                try:
                    response = read_response(self.root, token)
                except CallbackError as exc:
                    logger.error("%s", exc)
                    response_path(self.root, token).unlink(missing_ok=True)
                    continue
                if response is None:
                    continue
                self.forget(token)
                try:
                    self._deliver(token, response)
                except Exception:  # a stale token must not kill the watcher
                    logger.exception("could not deliver the answer to a task token")
            time.sleep(self._interval)
