"""Local SNS: published messages go to ``<root>/outbox.jsonl`` and one line on stderr.

Both the state machine's ``sns:publish`` task and the Lambdas' ``sns.publish`` client call land
in the same :class:`Outbox`, one JSON object per line::

    {"MessageId": "...", "TopicArn": "...", "Subject": "...", "Message": "...",
     "Timestamp": "2026-11-21T19:30:00Z", "Source": "state machine" | "lambda"}
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.jsonl"


class Outbox:
    """Append-only JSON-lines file of published messages.

    Args:
        root: The local store root; the outbox is ``<root>/outbox.jsonl``.
        echo: Whether to print one line per message on stderr, or a function printing it.
    """

    def __init__(self, root: Path | str, echo: bool | Callable[[str], None] = True) -> None:
        self.path = Path(root) / OUTBOX_FILE
        self._echo = echo
        self._lock = threading.Lock()

    def publish(
        self,
        topic_arn: str,
        message: str,
        subject: str | None = None,
        source: str = "state machine",
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Append one message and print a short line; return its MessageId."""
        message_id = str(uuid.uuid4())
        record: dict[str, Any] = {
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Source": source,
        }
        if attributes:
            record["MessageAttributes"] = dict(attributes)
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write(2) of the whole line on an O_APPEND descriptor (text-mode buffering
            # would split a long line); messages() skips a last line not yet complete
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                data = (line + "\n").encode("utf-8")
                while data:  # a regular file takes it all at once unless the disk is full
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        if self._echo:
            topic = topic_arn.rsplit(":", 1)[-1] if topic_arn else "?"
            first = subject or (message.splitlines()[0] if message else "")
            line = f"[sns] {topic}: {first[:120]}  (outbox: {self.path})"
            if callable(self._echo):
                self._echo(line)
            else:
                print(line, file=sys.stderr, flush=True)
        return message_id

    def messages(self) -> list[dict[str, Any]]:
        """Return every message of the outbox, oldest first."""
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n") and line.strip()]


class SnsPublishHandler:
    """``arn:aws:states:::sns:publish``: the request in, a Publish response out."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def start(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Publish the message of a ``sns:publish`` task."""
        from workflow.local.engine import TaskFailed

        topic = params.get("TopicArn") or params.get("TargetArn") or params.get("PhoneNumber")
        message = params.get("Message")
        if not topic or message is None:
            raise TaskFailed(
                "SNS.InvalidParameterException",
                "sns:publish needs TopicArn and Message; add them to the task's Parameters.",
            )
        if not isinstance(message, str):
            message = json.dumps(message)
        message_id = self.outbox.publish(
            str(topic),
            message,
            subject=params.get("Subject"),
            attributes=params.get("MessageAttributes"),
        )
        return {
            "MessageId": message_id,
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": str(uuid.uuid4())},
        }
