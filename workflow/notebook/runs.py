"""Author and run the state machine from a notebook with the Step Functions Data Science SDK.

- :func:`insert_step_after` / :func:`state_names`: edit and inspect the SDK ``Workflow`` that
  :func:`workflow.definition.build_workflow` returns (stages are switched on and off, and
  reconfigured, through the configuration: :meth:`Session.reconfigure`).
- :class:`LocalStepFunctions`: the local runtime behind a Step Functions API on 127.0.0.1 and a
  boto3 client for it, so ``Workflow.create()``, ``execute()``, ``get_output()`` and
  ``list_events()`` run the real ASL on this machine.
- :func:`deploy`: create or update the state machine in the AWS account (aws mode).
- :func:`follow`: print state changes of an execution while it runs (any endpoint).
- :func:`state_visits`, :func:`state_rows`, :func:`history_rows`: the progress and history
  tables of a finished execution, from its events.
- :func:`remember_run` / :func:`last_run`: the record notebook 03 reads to find the endpoint
  and the held-out data of the last run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from workflow.notebook.session import NotebookError, Session
from workflow.notebook.tables import Table

RUNS_FOLDER = "notebooks"
LAST_RUN = "last-run.json"
FAILURE_EVENTS = (
    "TaskFailed",
    "TaskTimedOut",
    "TaskSubmitFailed",
    "TaskStartFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "ExecutionFailed",
    "ExecutionTimedOut",
    "ExecutionAborted",
)
# Statuses of a state in the progress table, least to most notable.
STATUS_ORDER = ("succeeded", "retried", "caught", "running", "failed")
# Credentials that the local endpoint accepts; real ones must never be sent to it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


# ---------------------------------------------------------------------------------------------
# 1. editing the SDK workflow
# ---------------------------------------------------------------------------------------------


class _Collect:
    """A `stepfunctions` graph visitor that keeps the state objects by name."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}

    def is_visited(self, state: Any) -> bool:
        return state.state_id in self.states

    def visit(self, state: Any) -> None:
        self.states[state.state_id] = state


def sdk_states(workflow: Any) -> dict[str, Any]:
    """Return the SDK state objects of a ``Workflow``, by state name."""
    collector = _Collect()
    workflow.definition.branch.accept(collector)
    return collector.states


def state_names(workflow: Any) -> list[str]:
    """Return the state names of a ``Workflow``'s ASL document, in document order."""
    return list(json.loads(workflow.definition.to_json())["States"])


def insert_step_after(workflow: Any, after: str, step: Any) -> Any:
    """Return a new ``Workflow`` with ``step`` inserted after the state named ``after``.

    The states of ``workflow`` are shared with the result (rebuild the original with
    ``build_workflow`` when you need both).

    Args:
        workflow: The SDK workflow (``build_workflow(config, client=...)``).
        after: The name of a Task or Pass state.
        step: A new SDK state, e.g. ``stepfunctions.steps.Pass("RecordDataset", ...)``.

    Raises:
        NotebookError: When ``after`` does not exist, is a Choice or terminal state, or the
            step's name is taken.
    """
    from stepfunctions.workflow import Workflow

    states = sdk_states(workflow)
    if after not in states:
        raise NotebookError(
            f"there is no state {after!r} to insert after; the states are "
            f"{', '.join(sorted(states))}."
        )
    if step.state_id in states:
        raise NotebookError(
            f"a state named {step.state_id!r} exists already; give the new step another name."
        )
    previous = states[after]
    if previous.type in ("Choice", "Succeed", "Fail"):
        raise NotebookError(
            f"{after!r} is a {previous.type} state, after which nothing can be chained; insert "
            "after a Task or Pass state."
        )
    following = previous.next_step
    if following is not None:
        step.next(following)
    previous.next(step)
    return Workflow(
        name=workflow.name,
        definition=workflow.definition.branch,
        role=workflow.role,
        timeout_seconds=workflow.timeout_seconds,
        comment=workflow.comment,
        client=workflow.client,
    )


def with_client(workflow: Any, client: Any) -> Any:
    """Return a ``Workflow`` with the same definition that talks to ``client``."""
    from stepfunctions.workflow import Workflow

    return Workflow(
        name=workflow.name,
        definition=workflow.definition,
        role=workflow.role,
        timeout_seconds=workflow.timeout_seconds,
        comment=workflow.comment,
        client=client,
    )


def document_of(workflow: Any) -> dict[str, Any]:
    """Return the ASL document of a ``Workflow`` as a dict."""
    document: dict[str, Any] = json.loads(workflow.definition.to_json())
    return document


def compare_workflows(before: Any, after: Any) -> Table:
    """Return the states added, removed or changed between two workflows."""
    old, new = document_of(before)["States"], document_of(after)["States"]
    rows = []
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new:
            rows.append([name, "removed", old[name].get("Type")])
        elif name not in old:
            rows.append([name, "added", new[name].get("Type")])
        elif old[name] != new[name]:
            changed = sorted(
                k for k in {*old[name], *new[name]} if old[name].get(k) != new[name].get(k)
            )
            rows.append([name, "changed: " + ", ".join(changed), new[name].get("Type")])
    return Table(["state", "change", "type"], rows, title="differences")


def check(workflow: Any, source: str = "the workflow") -> list[str]:
    """Validate a workflow's ASL offline (structure and task Parameters); return the states.

    Raises:
        ValidationError: With every problem found.
    """
    from workflow.errors import ValidationError
    from workflow.validate import validate_definition

    document = document_of(workflow)
    problems = validate_definition(document)
    if problems:
        raise ValidationError(problems, source=source)
    return list(document["States"])


def graph_png(workflow: Any, folder: Path, name: str = "") -> Path:
    """Draw a workflow's graph offline (``python -m workflow render --graph``) into a new PNG.

    Args:
        workflow: The SDK workflow.
        folder: Where to write; an existing file is never overwritten (a number is appended).
        name: The file stem (default: the workflow's name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = name or workflow.name
    path = folder / f"{stem}.png"
    number = 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}.png"
    from workflow.graph import draw_graph

    draw_graph(document_of(workflow), path)
    return path


# ---------------------------------------------------------------------------------------------
# 2. the local Step Functions API
# ---------------------------------------------------------------------------------------------


class LocalStepFunctions:
    """The local runtime served as a Step Functions API, with a client for the SDK.

    Use it as a context manager around the cell that runs the workflow::

        with nb.LocalStepFunctions(session) as local:
            workflow = build_workflow(session.config, client=local.client)
            workflow.create()
            execution = workflow.execute(name=..., inputs=local.execution_input())
            output = execution.get_output(wait=True)

    Leaving the block stops the API server, the jobs and (unless ``keep_endpoint``) the local
    endpoint; a kept endpoint is listed by ``python -m workflow endpoints list``.

    Args:
        session: A ``local`` session.
        approve: ``auto`` (approve when the gate metric passes) or ``manual``.
        keep_endpoint: Leave the endpoint running for notebook 03.
        stream: Where progress lines go (default: the cell's stdout).
        verbose: Print every training log line, not only the progress lines.
        **runtime_options: Passed to :class:`~workflow.local.runtime.LocalRuntime`.
    """

    def __init__(
        self,
        session: Session,
        *,
        approve: str | None = None,
        keep_endpoint: bool = True,
        stream: TextIO | None = None,
        verbose: bool = False,
        **runtime_options: Any,
    ) -> None:
        if not session.local:
            raise NotebookError(
                f"LocalStepFunctions needs mode 'local', not {session.mode!r}; in aws mode "
                "deploy with nb.deploy(workflow) instead."
            )
        self.session = session
        self.approve = approve
        self.keep_endpoint = keep_endpoint
        self.stream = stream
        self.verbose = verbose
        self.runtime_options = runtime_options
        self.runtime: Any = None
        self.client: Any = None
        self.url = ""
        self._stop_server: Any = None
        self._unsubscribe: Any = None

    def __enter__(self) -> LocalStepFunctions:
        import boto3

        from workflow.api import ApiServer, LocalAwsApi
        from workflow.local.report import Progress
        from workflow.local.runtime import LocalRuntime

        progress = Progress(stream=self.stream or sys.stdout, verbose=self.verbose)
        self.runtime = LocalRuntime(
            self.session.config,
            self.session.root,
            approve=self.approve,
            log_sink=progress.log_sink,
            **self.runtime_options,
        )
        try:
            self.runtime.install()
            self._unsubscribe = self.runtime.engine.on_event(progress)
            server = ApiServer(LocalAwsApi(self.runtime.engine, self.runtime.sagemaker)).start()
            self.url, self._stop_server = server.url, server.stop
            self.client = boto3.client(
                "stepfunctions",
                endpoint_url=self.url,
                region_name=self.session.config.region,
                **LOCAL_CREDENTIALS,
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the API server (aborting running executions), the jobs and the endpoint."""
        if self._stop_server is not None:
            self._stop_server()
            self._stop_server = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.runtime is not None:
            self.runtime.close(keep_endpoints=self.keep_endpoint)

    @property
    def store(self) -> Any:
        """The local store."""
        return self.runtime.store

    def execution_input(
        self, commit: str = "", image_uri: str = "", environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Return the execution input of a local run on the synthetic data set of the store.

        Like ``run --local``: the local hyperparameters, poll interval and gate threshold
        (``GateThreshold = local.gate_threshold``) over the configuration's defaults.

        Args:
            commit: The commit to build (default: the working tree's ``git rev-parse HEAD``).
            image_uri: An image to use instead of building one.
            environ: The environment of the commit lookup (default ``os.environ``).
        """
        from workflow.local.pipeline import build_input, ensure_dataset, local_commit

        data = ensure_dataset(self.runtime.store, self.session.config)
        commit = commit or local_commit(os.environ if environ is None else environ)
        return build_input(self.session.config, commit, data, image_uri or None)

    def endpoint_url(self, name: str = "") -> str | None:
        """Return the URL of a running local endpoint (default: the configured one)."""
        url: str | None = self.runtime.endpoint_url(name or self.session.config.endpoint.name)
        return url


# ---------------------------------------------------------------------------------------------
# 3. AWS
# ---------------------------------------------------------------------------------------------


def deploy(workflow: Any) -> Any:
    """Create the SDK workflow's state machine in the account, or update it in place.

    Uses :func:`workflow.aws.deploy` (the SDK's ``create()`` only logs an error when the name is
    taken) and attaches the ARN to ``workflow``, so that ``workflow.execute()`` works next.

    Returns:
        The :class:`workflow.aws.DeployResult` (``arn``, ``action``, ``diff``).
    """
    from workflow import aws

    result = aws.deploy(
        workflow.client, workflow.name, workflow.definition.to_json(pretty=True), workflow.role
    )
    workflow.state_machine_arn = result.arn
    return result


def aws_execution_input(session: Session, commit: str = "", image_uri: str = "") -> dict[str, Any]:
    """Return the execution input of a run in the account (data under ``s3.bucket``/``prefix``).

    Args:
        session: An ``aws`` session.
        commit: The commit to build (default: CodeBuild's source version or ``git rev-parse``).
        image_uri: An image in ECR to use instead of building one.
    """
    from workflow.naming import execution_input, resolve_commit

    commit = commit or resolve_commit(os.environ, cwd=session.project)
    return execution_input(session.config, commit, image_uri=image_uri or None)


# ---------------------------------------------------------------------------------------------
# 4. progress and history
# ---------------------------------------------------------------------------------------------


def _state_name(event: Mapping[str, Any]) -> str | None:
    for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
        details = event.get(key)
        if isinstance(details, Mapping) and details.get("name"):
            return str(details["name"])
    return None


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _seconds(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def follow(
    execution: Any,
    poll_seconds: float = 5.0,
    stream: TextIO | None = None,
    timeout: float | None = None,
) -> str:
    """Print the states an execution enters and leaves until it ends; return its status.

    Works with any Step Functions endpoint (it polls ``describe()`` and ``list_events()``).

    Raises:
        NotebookError: When ``timeout`` seconds pass first.
    """
    out = stream or sys.stdout
    seen = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = str(execution.describe()["status"])
        events = list(execution.list_events(max_items=100000))
        for event in events[seen:]:
            kind = str(event.get("type", ""))
            name = _state_name(event)
            if kind.endswith("StateEntered") and name:
                print(f"  > {name}", file=out, flush=True)
            elif kind.endswith("StateExited") and name:
                print(f"  < {name}", file=out, flush=True)
            elif kind in FAILURE_EVENTS:
                details = _details(event)
                print(f"  ! {kind}: {details.get('error', '')}", file=out, flush=True)
        seen = len(events)
        if status != "RUNNING":
            print(f"execution {status}", file=out, flush=True)
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise NotebookError(
                f"the execution {execution.execution_arn} still runs after {timeout:.0f} s; "
                "follow it in the console or raise the timeout."
            )
        time.sleep(poll_seconds)


@dataclass(frozen=True)
class StateVisit:
    """One visit of a state: its start (seconds after the execution started) and duration."""

    name: str
    start: float
    seconds: float | None
    status: str


def state_visits(events: Sequence[Mapping[str, Any]]) -> list[StateVisit]:
    """Return every state visit of an execution history, in the order they started.

    ``status`` of a visit: ``succeeded``; ``retried`` (a task error, then a retry succeeded);
    ``caught`` (a task error routed on by a ``Catch``, e.g. "endpoint missing -> create it");
    ``failed`` (a task error and the state was not left); ``running`` (not left yet).
    """
    if not events:
        return []
    origin = _seconds(events[0]["timestamp"])
    visits: list[dict[str, Any]] = []
    open_visits: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = str(event.get("type", ""))
        name = _state_name(event)
        at = _seconds(event["timestamp"]) - origin
        current = list(open_visits.values())[-1] if open_visits else None
        if kind.endswith("StateEntered") and name:
            visit = {"name": name, "start": at, "end": None, "failed": False, "recovered": False}
            visits.append(visit)
            open_visits[name] = visit
        elif kind.endswith("StateExited") and name and name in open_visits:
            open_visits.pop(name)["end"] = at
        elif kind in FAILURE_EVENTS and not kind.startswith("Execution") and current:
            current["failed"], current["recovered"] = True, False
        elif kind.endswith("Succeeded") and current and current["failed"]:
            current["recovered"] = True
    return [
        StateVisit(
            name=v["name"],
            start=round(v["start"], 3),
            seconds=None if v["end"] is None else round(v["end"] - v["start"], 3),
            status=_visit_status(v),
        )
        for v in visits
    ]


def _visit_status(visit: Mapping[str, Any]) -> str:
    if visit["end"] is None:
        return "failed" if visit["failed"] else "running"
    if visit["failed"]:
        return "retried" if visit["recovered"] else "caught"
    return "succeeded"


def state_rows(events: Sequence[Mapping[str, Any]]) -> Table:
    """Return the progress table: one row per state with visits, start, duration and status."""
    rows: dict[str, list[Any]] = {}
    for visit in state_visits(events):
        row = rows.get(visit.name)
        if row is None:
            rows[visit.name] = [visit.name, 1, visit.start, visit.seconds, visit.status]
            continue
        row[1] += 1
        if visit.seconds is not None:
            row[3] = (row[3] or 0.0) + visit.seconds
        row[4] = max(row[4], visit.status, key=STATUS_ORDER.index)
    for row in rows.values():
        row[3] = None if row[3] is None else round(row[3], 2)
    return Table(
        ["state", "visits", "started at (s)", "duration (s)", "status"],
        list(rows.values()),
        title="states of the execution",
    )


def history_rows(events: Sequence[Mapping[str, Any]], limit: int = 200) -> Table:
    """Return the execution history as a table (id, time, type, state, details)."""
    if not events:
        return Table(["id", "t (s)", "type", "state", "details"], [])
    origin = _seconds(events[0]["timestamp"])
    rows = []
    current = ""
    for event in list(events)[:limit]:
        kind = str(event.get("type", ""))
        name = _state_name(event)
        if name:
            current = name
        details = _details(event)
        text = ""
        if details.get("error") or details.get("cause"):
            text = f"{details.get('error', '')}: {str(details.get('cause', ''))[:160]}"
        elif details.get("resource"):
            text = f"{details.get('resourceType', '')}:{details['resource']}"
        rows.append(
            [event.get("id"), round(_seconds(event["timestamp"]) - origin, 2), kind, current, text]
        )
    return Table(["id", "t (s)", "type", "state", "details"], rows, title="execution history")


def run_summary(status: str, output: Any) -> Table:
    """Return the outcome of an execution: status, model artifact, metrics, endpoint."""
    from workflow.local.report import find_key, metrics_of

    rows: list[list[Any]] = [["status", status]]
    rows.append(["model artifact", find_key(output, "S3ModelArtifacts")])
    for key, value in sorted(metrics_of(output).items()):
        rows.append([f"metric {key}", value])
    rows.append(["endpoint", find_key(output, "EndpointName")])
    return Table(["", "value"], rows, title="run summary")


def require_success(status: str, events: Sequence[Mapping[str, Any]]) -> None:
    """Raise when an execution did not succeed, naming the state, error and cause.

    Raises:
        NotebookError: When ``status`` is not ``SUCCEEDED``.
    """
    if status == "SUCCEEDED":
        return
    from workflow.local.report import failing_state, shorten

    state, error, cause = failing_state(events)
    raise NotebookError(
        f"the execution ended {status} in state {state or '-'} with {error or 'no error'}: "
        f"{shorten(cause, 400)}; fix the cause (see the history above) and run the cell again."
    )


# ---------------------------------------------------------------------------------------------
# 5. the run record shared with notebook 03
# ---------------------------------------------------------------------------------------------


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
