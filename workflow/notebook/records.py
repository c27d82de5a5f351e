"""The run record notebook 02 writes and notebook 03 reads (endpoint, held-out data, model)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.notebook.session import NotebookError, Session

RUNS_FOLDER = "notebooks"
LAST_RUN = "last-run.json"


def remember_run(
    session: Session,
    execution_arn: str,
    status: str,
    execution_input: Mapping[str, Any],
    output: Any,
    endpoint_url: str | None = None,
) -> Path:
    """Record a finished run for notebook 03 (``<root>/notebooks/runs/<name>.json``).

    Returns:
        The record's path; ``<root>/notebooks/last-run.json`` points at it.
    """
    from workflow.local.report import find_key
    from workflow.local.store import write_json_atomic

    name = str(execution_input.get("JobName") or execution_arn.rsplit(":", 1)[-1])
    record = {
        "mode": session.mode,
        "execution_arn": execution_arn,
        "status": status,
        "endpoint_name": execution_input.get("EndpointName", session.config.endpoint.name),
        "endpoint_url": endpoint_url,
        "test_data": execution_input.get("TestData"),
        "model_artifact": find_key(output, "S3ModelArtifacts"),
        "input": dict(execution_input),
        "output": output,
    }
    folder = session.root / RUNS_FOLDER / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    with path.open("x", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, default=str)
        handle.write("\n")
    write_json_atomic(session.root / RUNS_FOLDER / LAST_RUN, {"record": str(path)})
    return path


def last_run(session: Session) -> dict[str, Any]:
    """Return the record of the last run made by notebook 02 with this store.

    Raises:
        NotebookError: When no run is recorded.
    """
    pointer = session.root / RUNS_FOLDER / LAST_RUN
    if not pointer.is_file():
        raise NotebookError(
            f"no run is recorded in {session.root} (no {pointer}); run notebooks/02_workflow.py "
            "with the same root first, or pass endpoint_name and test_data."
        )
    record_path = Path(json.loads(pointer.read_text())["record"])
    record: dict[str, Any] = json.loads(record_path.read_text())
    return record


def model_artifact(record: Mapping[str, Any]) -> str:
    """Return the ``model.tar.gz`` URI of a run record (empty when the run made none)."""
    from workflow.local.report import find_key

    value = record.get("model_artifact") or find_key(record.get("output"), "S3ModelArtifacts")
    return str(value or "")
