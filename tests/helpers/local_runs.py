"""Local pipeline runs for the end-to-end tests: a run, the outbox, a reviewer."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

from workflow.config import WorkflowConfig
from workflow.local import callbacks
from workflow.local.pipeline import RunResult, run_pipeline
from workflow.local.report import Progress


def run(config: WorkflowConfig, **options: Any) -> tuple[RunResult, str]:
    """Run the pipeline in this process; return the result and the progress it printed."""
    out = io.StringIO()
    result = run_pipeline(
        config,
        progress=Progress(stream=out),
        time_scale=0.2,
        stop_grace_seconds=3,
        environ={},
        **options,
    )
    return result, out.getvalue()


def outbox(root: Path) -> list[dict[str, Any]]:
    """The SNS messages the local runs published, oldest first."""
    path = root / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def reject_when_asked(root: Path, stop: threading.Event) -> None:
    """Reject the first approval request that appears (a reviewer on the command line)."""
    while not stop.is_set():
        for request in callbacks.pending_requests(root):
            callbacks.respond_if_pending(root, request["token"], "reject", cause="masks look wrong")
            return
        time.sleep(0.1)
