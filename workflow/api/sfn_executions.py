"""Step Functions executions on the local engine: start, describe, list, stop, redrive, history.

Every execution runs through `workflow.local.engine.LocalEngine` with the handlers the server was
built with (the ones ``run --local`` registers), so a client sees what AWS would give: the
JSON-encoded ``input``/``output`` of DescribeExecution, ``error``/``cause``/``stopDate``,
``redriveCount``, history paging. Shapes and rules:
https://docs.aws.amazon.com/step-functions/latest/apireference/API_Operations.html.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from workflow.api.errors import ApiError, require, validation
from workflow.api.missing import fail_missing_tasks
from workflow.api.sfn_machines import Machine, StateMachines, check_arn, now
from workflow.api.wire import page
from workflow.local.engine import (
    ABORTED,
    FAILED,
    RUNNING,
    TIMED_OUT,
    EngineError,
    LocalEngine,
    LocalExecution,
    RedriveError,
    TaskTokenError,
)

logger = logging.getLogger(__name__)

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
_DETAIL_DATA = ("input", "output")
_STOP_WAIT_SECONDS = 10.0
REDRIVABLE = frozenset({FAILED, TIMED_OUT, ABORTED})
_MAX_TOKEN = 2048
_TOKEN_GRACE_SECONDS = 1.0


@dataclass
class Entry:
    """One execution as the API knows it (the latest attempt of its ARN)."""

    execution: LocalExecution
    machine_arn: str
    version_arn: str | None
    alias_arn: str | None
    express: bool
    redrive_date: Any = None

    def describe(self) -> dict[str, Any]:
        """The DescribeExecution shape."""
        out = self.execution.describe()
        out["inputDetails"] = {"included": True}
        if "output" in out:
            out["outputDetails"] = {"included": True}
        if self.version_arn:
            out["stateMachineVersionArn"] = self.version_arn
        if self.alias_arn:
            out["stateMachineAliasArn"] = self.alias_arn
        if self.redrive_date is not None:
            out["redriveDate"] = self.redrive_date
        status = self.execution.status
        if status in REDRIVABLE and not self.express:
            out["redriveStatus"] = "REDRIVABLE"
        else:
            out["redriveStatus"] = "NOT_REDRIVABLE"
            out["redriveStatusReason"] = (
                "Express executions cannot be redriven"
                if self.express
                else f"Execution is {status} and cannot be redriven"
            )
        return out

    def list_item(self) -> dict[str, Any]:
        """The ExecutionListItem shape."""
        execution = self.execution
        item = {
            "executionArn": execution.arn,
            "stateMachineArn": self.machine_arn,
            "name": execution.name,
            "status": execution.status,
            "startDate": execution.start_date,
            "stopDate": execution.stop_date,
            "redriveCount": execution.redrive_count,
            "redriveDate": self.redrive_date,
        }
        if self.version_arn:
            item["stateMachineVersionArn"] = self.version_arn
        if self.alias_arn:
            item["stateMachineAliasArn"] = self.alias_arn
        return item


class Executions:
    """The executions of one server, run by ``engine``."""

    def __init__(self, engine: LocalEngine, machines: StateMachines) -> None:
        self.engine = engine
        self.machines = machines
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    # -- start ------------------------------------------------------------------------------
    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """StartExecution (idempotent for a running execution of the same name and input)."""
        entry = self._start(body, sync=False)
        return {"executionArn": entry.execution.arn, "startDate": entry.execution.start_date}

    def start_sync(self, body: dict[str, Any]) -> dict[str, Any]:
        """StartSyncExecution: run an EXPRESS execution to its end and describe it."""
        entry = self._start(body, sync=True)
        execution = entry.execution.wait()
        out = {
            k: v
            for k, v in entry.describe().items()
            if k not in ("redriveCount", "redriveStatus", "redriveStatusReason")
        }
        out["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": _billed_ms(execution),
        }
        return out

    def _start(self, body: dict[str, Any], sync: bool) -> Entry:
        reference = require(body, "stateMachineArn")
        machine, version, alias_arn = self.machines.resolve(reference)
        if sync and machine.type != "EXPRESS":
            raise ApiError(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine: StartSyncExecution "
                "runs EXPRESS state machines only",
            )
        text = body.get("input")
        text = "{}" if text is None else str(text)
        try:
            execution_input = json.loads(text)
        except ValueError as exc:
            raise ApiError(
                "InvalidExecutionInput", f"Invalid execution input: {text[:100]!r} ({exc})"
            ) from exc
        name = body.get("name")
        if name is not None:
            from workflow.api.diagnostics import check_name

            check_name(name, "execution")
        arn = f"{machine.arn.replace(':stateMachine:', ':execution:')}:{name}"
        with self._lock:
            existing = self._entries.get(arn) if name else None
        if existing is not None:
            same = existing.execution.input == execution_input
            if same and not existing.execution.done and machine.type == "STANDARD":
                return existing
            raise ApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
        definition = version.definition if version else machine.definition
        for added in fail_missing_tasks(self.engine, json.loads(definition)):
            logger.warning("no local handler for %s: its Task fails when it runs", added)
        try:
            execution = self.engine.start_execution(
                definition, execution_input, name, state_machine_name=machine.name
            )
        except EngineError as exc:
            raise validation(str(exc)) from exc
        entry = Entry(
            execution=execution,
            machine_arn=machine.arn,
            version_arn=f"{machine.arn}:{version.number}"
            if version and alias_arn is None
            else None,
            alias_arn=alias_arn,
            express=machine.type == "EXPRESS",
        )
        if alias_arn is not None and version is not None:
            entry.version_arn = f"{machine.arn}:{version.number}"
        with self._lock:
            self._entries[execution.arn] = entry
        return entry

    # -- read -------------------------------------------------------------------------------
    def get(self, arn: Any, member: str = "executionArn") -> Entry:
        """Return the entry of an execution ARN.

        Raises:
            ApiError: ``InvalidArn`` or ``ExecutionDoesNotExist``.
        """
        text = check_arn(arn, "execution", member)
        with self._lock:
            entry = self._entries.get(text)
        if entry is None:
            raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{text}'")
        return entry

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeExecution."""
        return self.get(require(body, "executionArn")).describe()

    def describe_machine(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeStateMachineForExecution: the definition the execution runs."""
        entry = self.get(require(body, "executionArn"))
        machine, _, _ = self.machines.resolve(entry.machine_arn)
        out = machine.describe()
        out["definition"] = entry.execution.definition
        out["updateDate"] = entry.execution.start_date
        return {k: out[k] for k in out if k not in ("status", "type", "creationDate")}

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListExecutions of a state machine (or version/alias), newest first."""
        if body.get("mapRunArn"):
            raise ApiError(
                "ResourceNotFound", f"Resource not found: '{body['mapRunArn']}' (no map runs)"
            )
        reference = require(body, "stateMachineArn")
        machine, version, alias = self.machines.resolve(reference)
        status = body.get("statusFilter")
        if status is not None and status not in STATUSES:
            raise validation(
                f"1 validation error detected: Value '{status}' at 'statusFilter' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(STATUSES)}]"
            )
        redrive = body.get("redriveFilter")
        with self._lock:
            entries = [e for e in self._entries.values() if _belongs(e, machine, version, alias)]
        entries = [e for e in entries if status is None or e.execution.status == status]
        if redrive == "REDRIVEN":
            entries = [e for e in entries if e.execution.redrive_count > 0]
        elif redrive == "NOT_REDRIVEN":
            entries = [e for e in entries if e.execution.redrive_count == 0]
        entries.sort(key=lambda e: e.execution.start_date, reverse=True)
        chunk, token = page(entries, body, f"executions:{reference}:{status}:{redrive}")
        return {"executions": [e.list_item() for e in chunk], "nextToken": token}

    def history(self, body: dict[str, Any]) -> dict[str, Any]:
        """GetExecutionHistory with maxResults, nextToken, reverseOrder, includeExecutionData."""
        entry = self.get(require(body, "executionArn"))
        events = entry.execution.history()
        reverse = bool(body.get("reverseOrder"))
        if reverse:
            events.reverse()
        if body.get("includeExecutionData") is False:
            events = [_without_data(e) for e in events]
        scope = f"history:{entry.execution.arn}:{entry.execution.redrive_count}:{reverse}"
        chunk, token = page(events, body, scope)
        return {"events": chunk, "nextToken": token}

    # -- change -----------------------------------------------------------------------------
    def stop(self, body: dict[str, Any]) -> dict[str, Any]:
        """StopExecution with its error and cause (kept in DescribeExecution and the history)."""
        entry = self.get(require(body, "executionArn"))
        execution = entry.execution
        if entry.express:
            raise ApiError(
                "ValidationException", "StopExecution is not supported for EXPRESS executions here"
            )
        if not execution.done:
            execution.stop(error=body.get("error"), cause=body.get("cause"))
            execution.wait(_STOP_WAIT_SECONDS)
        return {"stopDate": execution.stop_date or execution.stop_requested or now()}

    def redrive(self, body: dict[str, Any]) -> dict[str, Any]:
        """RedriveExecution: FAILED, ABORTED or TIMED_OUT STANDARD executions only."""
        entry = self.get(require(body, "executionArn"))
        execution = entry.execution
        if entry.express:
            raise ApiError(
                "ExecutionNotRedrivable",
                f"Execution '{execution.arn}' belongs to an EXPRESS state machine; only STANDARD "
                "executions can be redriven",
            )
        if execution.status not in REDRIVABLE:
            raise ApiError(
                "ExecutionNotRedrivable",
                f"Execution '{execution.arn}' is {execution.status}; only FAILED, ABORTED or "
                "TIMED_OUT executions can be redriven",
            )
        try:
            redriven = self.engine.redrive(execution)
        except RedriveError as exc:
            raise ApiError("ExecutionNotRedrivable", str(exc)) from exc
        with self._lock:
            entry.execution = redriven
            entry.redrive_date = redriven.start_date
        return {"redriveDate": redriven.start_date}

    # -- task tokens ------------------------------------------------------------------------
    def send_success(self, body: dict[str, Any]) -> dict[str, Any]:
        """SendTaskSuccess; ``output`` must be JSON."""
        token = _token(body)
        text = str(require(body, "output"))
        try:
            output = json.loads(text)
        except ValueError as exc:
            raise ApiError("InvalidOutput", f"Invalid output: {text[:100]!r} ({exc})") from exc
        _answer(lambda: self.engine.send_task_success(token, output))
        return {}

    def send_failure(self, body: dict[str, Any]) -> dict[str, Any]:
        """SendTaskFailure with its error and cause."""
        token = _token(body)
        _answer(lambda: self.engine.send_task_failure(token, body.get("error"), body.get("cause")))
        return {}

    def send_heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        """SendTaskHeartbeat."""
        token = _token(body)
        _answer(lambda: self.engine.send_task_heartbeat(token))
        return {}

    def abort_running(self) -> None:
        """Stop every running execution (the server is shutting down)."""
        with self._lock:
            running = [e.execution for e in self._entries.values() if not e.execution.done]
        for execution in running:
            execution.stop(error="States.Aborted", cause="the local AWS API stopped")
        for execution in running:
            execution.wait(_STOP_WAIT_SECONDS)


def _belongs(entry: Entry, machine: Machine, version: Any, alias: str | None) -> bool:
    if entry.machine_arn != machine.arn:
        return False
    if alias is not None:
        return entry.alias_arn == alias
    if version is not None:
        return entry.version_arn == f"{machine.arn}:{version.number}"
    return True


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k not in _DETAIL_DATA}
    return out


def _token(body: dict[str, Any]) -> str:
    token = str(require(body, "taskToken"))
    if len(token) > _MAX_TOKEN or not token.isprintable():
        raise ApiError("InvalidToken", f"Invalid Token: '{token[:40]}...' is not a task token")
    return token


def _answer(call: Any) -> None:
    # On AWS a token is valid from the moment its task is scheduled; the local engine registers
    # it just after the task's handler ran, so an answer racing that window is retried briefly.
    deadline = time.monotonic() + _TOKEN_GRACE_SECONDS
    while True:
        try:
            call()
            return
        except TaskTokenError as exc:
            # The engine says "token ...: the task waiting for this token timed out".
            timed_out = "the task waiting for this token timed out" in str(exc)
            if timed_out or time.monotonic() > deadline:
                code = "TaskTimedOut" if timed_out else "TaskDoesNotExist"
                raise ApiError(code, str(exc)) from exc
            time.sleep(0.02)


def _billed_ms(execution: LocalExecution) -> int:
    stop = execution.stop_date or now()
    elapsed = (stop - execution.start_date).total_seconds() * 1000
    return max(100, int(-(-elapsed // 100) * 100))  # billed in 100 ms increments


__all__ = ["RUNNING", "Entry", "Executions"]
