"""What a local redrive needs besides the engine: where the run failed, and names to free.

``run --local --redrive`` re-runs the failed task with the input it had (the history is cut just
after the failed attempt, see :func:`cut_at_failure`), so a task that creates a named job asks
for the same name again. SageMaker refuses a name twice, so :func:`release_redriven_job` moves
the ended job's record and folder aside first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The jobs a redriven state creates again, by state: (record kind, execution input key, status).
REDRIVEN_JOBS: dict[str, tuple[str, str, str]] = {
    "Train": ("training-jobs", "TrainingJobName", "TrainingJobStatus"),
    "BatchTransform": ("transform-jobs", "TransformJobName", "TransformJobStatus"),
}
ENDED_JOB_STATUSES = ("Failed", "Stopped")


def failed_task_state(history: list[dict[str, Any]]) -> str | None:
    """Return the name of the state whose task failed last in a (cut) history."""
    name = None
    for event in history:
        if str(event.get("type", "")).endswith("StateEntered"):
            name = str((event.get("stateEnteredEventDetails") or {}).get("name"))
    return name


def release_redriven_job(sagemaker: Any, record: Any) -> Path | None:
    """Free the name of the failed job that a local redrive is about to create again.

    The redrive re-runs the failed task with the input it had, so Train (or BatchTransform)
    asks for the same job name again, which SageMaker refuses for ever ("Cannot create already
    existing training job"). AWS's own redrive would restart at the Fail state after a caught
    failure, so this re-run is the local runtime's; it moves the ended job's record and folder
    to ``<root>/redriven/<kind>/<name>-attempt<n>/`` (kept, never deleted or overwritten) so the
    name is free. A job that did not end (``InProgress``) is left alone.

    Returns:
        The archive folder, or ``None`` when nothing had to be freed.
    """
    state = failed_task_state(record.history)
    if state not in REDRIVEN_JOBS:
        return None
    kind, key, status_key = REDRIVEN_JOBS[state]
    name = str((record.input or {}).get(key) or "")
    current = sagemaker.records.get(kind, name) if name else None
    if current is None or current.get(status_key) not in ENDED_JOB_STATUSES:
        return None
    archive_root = sagemaker.store.folder("redriven") / kind
    archive_root.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while (archive_root / f"{name}-attempt{attempt}").exists():
        attempt += 1
    archive: Path = archive_root / f"{name}-attempt{attempt}"
    archive.mkdir()
    # The folder first, then the record: a crash in between leaves the record, and the next
    # redrive moves it (the folder is gone, nothing is lost).
    job_dir = sagemaker.store.folder("jobs") / name
    if job_dir.exists():
        os.replace(job_dir, archive / "job")
    os.replace(sagemaker.records.path(kind, name), archive / "record.json")
    logger.info("redrive: the failed %s %s is kept at %s; its name is free", kind, name, archive)
    return archive


def cut_at_failure(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cut a history just after its last failed task attempt (the failure a Catch routed on)."""
    failures = ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut")
    last = None
    for index, event in enumerate(history):
        if str(event.get("type", "")) in failures:
            last = index
    return history if last is None else history[: last + 1]
