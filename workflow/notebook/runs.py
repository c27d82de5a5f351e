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

        from workflow.local.report import Progress
        from workflow.local.runtime import LocalRuntime
        from workflow.local.server import serve_stepfunctions_api

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
            self.url, self._stop_server = serve_stepfunctions_api(self.runtime.engine)
            self.client = boto3.client(
                "stepfunctions",
                endpoint_url=self.url,
                region_name=self.session.config.region,
                **LOCAL_CREDENTIALS,
            )
            _answer_tokens_through(self.runtime, self.client)
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
        return self.runtime.endpoint_url(name or self.session.config.endpoint.name)


def _answer_tokens_through(runtime: Any, client: Any) -> None:
    """Let the local build and approval answer task tokens of executions served over HTTP.

    `LocalEngine.send_task_success/failure` reach the executions that the engine started
    itself, not those the API server runs, so an answer the engine does not take is sent
    through the served API (``SendTaskSuccess``/``SendTaskFailure``), as a real CodeBuild job or
    approval link would.
    """
    from workflow.local.engine import TaskTokenError

    engine = runtime.engine
    engine_success = engine.send_task_success
    engine_failure = engine.send_task_failure

    def success(token: str, output: Any) -> None:
        try:
            engine_success(token, output)
        except TaskTokenError:
            client.send_task_success(taskToken=token, output=json.dumps(output))

    def failure(token: str, error: str | None = None, cause: str | None = None) -> None:
        try:
            engine_failure(token, error, cause)
        except TaskTokenError:
            client.send_task_failure(taskToken=token, error=error or "", cause=cause or "")

    engine.send_task_success = success
    engine.send_task_failure = failure
    # The builder got the engine's methods when the runtime was built.
    runtime.builder._on_success = success
    runtime.builder._on_failure = failure


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

    ``status`` is ``succeeded``, ``failed`` (a task error happened in it, caught or not) or
    ``running`` (not left before the history ended).
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
        if kind.endswith("StateEntered") and name:
            visit = {"name": name, "start": at, "end": None, "failed": False}
            visits.append(visit)
            open_visits[name] = visit
        elif kind.endswith("StateExited") and name and name in open_visits:
            open_visits.pop(name)["end"] = at
        elif kind in FAILURE_EVENTS and not kind.startswith("Execution") and open_visits:
            list(open_visits.values())[-1]["failed"] = True
    return [
        StateVisit(
            name=v["name"],
            start=round(v["start"], 3),
            seconds=None if v["end"] is None else round(v["end"] - v["start"], 3),
            status="failed" if v["failed"] else "running" if v["end"] is None else "succeeded",
        )
        for v in visits
    ]


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
        row[4] = "failed" if "failed" in (row[4], visit.status) else visit.status
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
    from workflow.local.store import write_json_atomic

    name = str(execution_input.get("JobName") or execution_arn.rsplit(":", 1)[-1])
    record = {
        "mode": session.mode,
        "execution_arn": execution_arn,
        "status": status,
        "endpoint_name": execution_input.get("EndpointName", session.config.endpoint.name),
        "endpoint_url": endpoint_url,
        "test_data": execution_input.get("TestData"),
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
