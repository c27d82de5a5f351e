"""What a killed local runtime leaves behind, found, stopped and recorded by the next command.

A ``run --local`` killed with SIGKILL cannot stop its jobs: a training process runs in its own
session (so that stopping it reaches its workers), so it outlives the runtime, and its record
stays ``InProgress``. Every local job record therefore names the runtime that owns it and the
processes it started, each with its start time (a pid alone may have been reused since), and
:func:`reap_jobs` stops the processes of jobs whose runtime is gone and records them
``Stopped``, as SageMaker does for a stopped job.

The run itself is kept redrivable: while it runs, ``run --local`` keeps a snapshot of the
execution record (``runs/<name>/running.json``) and the pointer ``runs/in-progress.json``;
:func:`recover_run` turns the snapshot of a dead runtime into an ``ABORTED`` execution record
and points ``--redrive`` at it (the redrive restarts at the state that was running).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from workflow.local.docker_cli import DockerCli
from workflow.local.processes import stop_process_group
from workflow.local.report import save_json
from workflow.local.sagemaker import now_ms
from workflow.local.store import LocalStore, write_json_atomic

logger = logging.getLogger(__name__)

OWNER_KEY = "LocalOwner"
PIDS_STARTED_KEY = "PidsStarted"
IN_PROGRESS = "in-progress.json"
RUNNING = "running"
TRAINING_KIND = "training-jobs"
ORPHAN_REASON = (
    "the local runtime that ran this job (pid {pid}) ended without stopping it (killed?); the "
    "next command stopped the job. Redrive the run with 'python -m workflow run --local "
    "--redrive'."
)


def started_at(pid: int) -> float | None:
    """Return a living process's start time (seconds since the epoch), else ``None``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.Error, ValueError):
        return None


# psutil derives a start time from the boot time the kernel reports in whole seconds, which moves
# by a second when the clock is stepped (a VM's clock is); a reused pid starts much later.
START_TIME_TOLERANCE_SECONDS = 1.5


def is_same_process(pid: Any, started: Any) -> bool:
    """Whether ``pid`` still is the process that started at ``started`` (not a reused pid)."""
    if not isinstance(pid, int) or not isinstance(started, (int, float)):
        return False
    now = started_at(pid)
    return now is not None and abs(now - float(started)) < START_TIME_TOLERANCE_SECONDS


def owner_stamp() -> dict[str, Any]:
    """The record field naming this runtime process: ``{"Pid", "Started"}``."""
    pid = os.getpid()
    return {"Pid": pid, "Started": started_at(pid)}


def process_stamps(pids: Sequence[int]) -> list[float | None]:
    """The start times of the processes a job started (kept beside their pids)."""
    return [started_at(pid) for pid in pids]


def owner_alive(owner: Any) -> bool:
    """Whether the runtime named by an owner stamp is still running."""
    return isinstance(owner, Mapping) and is_same_process(owner.get("Pid"), owner.get("Started"))


def reap_jobs(records: Any, grace: float, kind: str = TRAINING_KIND) -> list[str]:
    """Stop the ``InProgress`` jobs of dead runtimes and record them ``Stopped``.

    Args:
        records: The local SageMaker records (:class:`workflow.local.sagemaker.Records`).
        grace: SIGTERM-to-SIGKILL grace of the processes.
        kind: The record kind (``training-jobs``).

    Returns:
        The names of the jobs stopped.
    """
    folder = Path(records.base) / kind
    status_key = "TrainingJobStatus"
    reaped = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = records.get(kind, path.stem)
        if not record or record.get(status_key) != "InProgress":
            continue
        owner = record.get(OWNER_KEY)
        if not isinstance(owner, Mapping) or owner_alive(owner):
            continue  # a record of an older version, or a runtime that still runs the job
        pids = list(record.get("Pids") or [])
        stamps = list(record.get(PIDS_STARTED_KEY) or [])
        for pid, stamp in zip(pids, stamps, strict=False):
            if is_same_process(pid, stamp):
                logger.warning("stopping training process %s of %s (its runtime died)", pid, path)
                stop_process_group(int(pid), grace)
        for container in record.get("Containers") or []:  # an image run in Docker
            logger.warning("removing container %s of %s (its runtime died)", container, path)
            DockerCli().remove(str(container))
        records.update(
            kind,
            path.stem,
            **{status_key: "Stopped"},
            SecondaryStatus="Stopped",
            FailureReason=ORPHAN_REASON.format(pid=owner.get("Pid")),
            TrainingEndTime=now_ms(),
            Pids=[],
            Containers=[],
        )
        reaped.append(path.stem)
    return reaped


def running_path(folder: Path, redrive_count: int) -> Path:
    """The live snapshot of a run's execution record."""
    suffix = f"-redrive{redrive_count}" if redrive_count else ""
    return folder / f"{RUNNING}{suffix}.json"


def snapshot_run(store: LocalStore, folder: Path, record: Mapping[str, Any]) -> None:
    """Keep the live snapshot of a running execution and the in-progress pointer up to date."""
    path = running_path(folder, int(record.get("redrive_count", 0)))
    write_json_atomic(path, dict(record))
    pointer = store.root / "runs" / IN_PROGRESS
    write_json_atomic(pointer, {"name": record["name"], "snapshot": str(path), **owner_stamp()})


class RunSnapshots:
    """An engine listener: snapshot an execution's record each time it enters a state.

    The listener runs before the state does its work, so a runtime killed while a state runs
    (a training job) leaves a snapshot in which that state is the open one, where a redrive
    restarts.

    Args:
        store: The local store (snapshots under ``runs/<name>/``).
        engine: The engine whose executions are snapshotted.
    """

    def __init__(self, store: LocalStore, engine: Any) -> None:
        self.store = store
        self.engine = engine
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        """Snapshot the execution of a ``*StateEntered`` event."""
        if not str(event.event.get("type", "")).endswith("StateEntered"):
            return
        matching = [e for e in self.engine.executions if e.arn == event.execution_arn]
        if not matching:
            return
        record = matching[-1].to_record().to_dict()
        with self._lock:
            snapshot_run(self.store, self.store.folder("runs") / record["name"], record)


def finish_snapshot(store: LocalStore, folder: Path, redrive_count: int) -> None:
    """Drop the live snapshot and the pointer once the run saved its own records."""
    running_path(folder, redrive_count).unlink(missing_ok=True)
    pointer = store.root / "runs" / IN_PROGRESS
    try:
        if json.loads(pointer.read_text()).get("Pid") == os.getpid():
            pointer.unlink()
    except (OSError, ValueError):
        pass


def recover_run(store: LocalStore, last_failed: str) -> Path | None:
    """Turn a dead runtime's live snapshot into an ABORTED record that ``--redrive`` resumes.

    Args:
        store: The local store.
        last_failed: The file name of the pointer ``--redrive`` reads (under ``runs/``).

    Returns:
        The execution record written, or ``None`` when no run was left behind.
    """
    pointer = store.root / "runs" / IN_PROGRESS
    try:
        data = json.loads(pointer.read_text())
    except (OSError, ValueError):
        return None
    if owner_alive(data):
        return None  # another runtime runs it right now
    snapshot = Path(str(data.get("snapshot", "")))
    try:
        record = json.loads(snapshot.read_text())
    except (OSError, ValueError):
        pointer.unlink(missing_ok=True)
        return None
    record["status"] = "ABORTED"
    count = int(record.get("redrive_count", 0))
    suffix = f"-redrive{count}" if count else ""
    target = snapshot.parent / f"execution{suffix}.json"
    if not target.exists():
        save_json(target, record)
    write_json_atomic(
        store.root / "runs" / last_failed, {"name": record["name"], "record": str(target)}
    )
    snapshot.unlink(missing_ok=True)
    pointer.unlink(missing_ok=True)
    logger.warning(
        "run %s was left behind by a runtime that died (pid %s); recorded as ABORTED: resume "
        "it with 'python -m workflow run --local --redrive'",
        record["name"],
        data.get("Pid"),
    )
    return target
