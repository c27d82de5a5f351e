"""Step Functions on AWS: deploy, start, wait, approve/reject and redrive.

Every function takes a boto3 Step Functions client (created by the command, or a Stubber's, or one
pointed at a local emulator with ``endpoint_url``/``AWS_ENDPOINT_URL_SFN``), so nothing here
decides where requests go. Expected failures raise `AwsError` with one actionable sentence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from workflow.contracts import ERROR_REJECTED
from workflow.errors import AwsError, ExecutionFailedError
from workflow.history import progress_line, state_name

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")

# botocore's error codes that have a known fix.
_FIXES = {
    "AccessDeniedException": "the credentials lack the Step Functions permission; use a role "
    "that allows it (see README 'AWS set-up')",
    "UnrecognizedClientException": "the credentials are not valid for this region/account; "
    "refresh them (aws sso login) or set AWS_PROFILE",
    "ExpiredTokenException": "the credentials expired; refresh them (aws sso login)",
    "InvalidDefinition": "the ASL is invalid; run 'python -m workflow validate'",
    "InvalidArn": "the ARN is malformed; copy it from 'deploy' or 'start' output",
    "StateMachineDoesNotExist": "deploy it first with 'python -m workflow deploy'",
    "ExecutionDoesNotExist": "check the execution ARN and the region",
    "ExecutionAlreadyExists": "execution names are unique per state machine; start again "
    "(a new name is derived each time)",
    "TaskDoesNotExist": "the token was already answered, or it expired",
    "TaskTimedOut": "the task timed out before the answer; start a new execution",
    "InvalidToken": "the token is malformed; copy it completely from the approval e-mail",
    "ExecutionNotRedrivable": "only FAILED, TIMED_OUT or ABORTED executions of the last 14 days "
    "with an unchanged definition can be redriven; start a new execution instead",
    "ExecutionLimitExceeded": "too many running executions; wait or stop some",
}


def console_url(region: str, arn: str) -> str:
    """Return the Step Functions console URL of an execution or state machine ARN."""
    host = f"https://{region}.console.aws.amazon.com/states/home?region={region}"
    kind = "executions/details" if ":execution:" in arn else "statemachines/view"
    return f"{host}#/{kind}/{quote(arn, safe='')}"


def _call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a client method and turn botocore errors into one-sentence `AwsError`s."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        return function(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Error")
        message = exc.response.get("Error", {}).get("Message", "")
        fix = _FIXES.get(code, "check the request and retry")
        raise AwsError(f"{what} failed: {code}: {message}; {fix}") from exc
    except NoCredentialsError as exc:
        raise AwsError(
            f"{what} failed: no AWS credentials; configure them (aws configure, AWS_PROFILE) or "
            "point --endpoint-url at a local emulator"
        ) from exc
    except NoRegionError as exc:
        raise AwsError(f"{what} failed: no region; set 'region' in workflow.yaml") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{what} failed: {exc}; check the network and the endpoint URL") from exc


# ---------------------------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """What `deploy` did: ``action`` is created, updated, unchanged or (dry run) would-*."""

    arn: str
    action: str
    diff: str = ""


def find_state_machine(client: Any, name: str) -> str | None:
    """Return the ARN of the state machine called ``name``, or None."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = _call("ListStateMachines", client.list_state_machines, **kwargs)
        for machine in page.get("stateMachines", []):
            if machine.get("name") == name:
                return str(machine["stateMachineArn"])
        token = page.get("nextToken")
        if not token:
            return None


def deploy(
    client: Any,
    name: str,
    definition: str,
    role_arn: str,
    *,
    tags: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> DeployResult:
    """Create the state machine, or update it when its definition or role changed.

    Args:
        client: A Step Functions client.
        name: The state machine name.
        definition: The ASL JSON string (``render_json(config)``).
        role_arn: The role the state machine runs as.
        tags: Tags for a new state machine.
        dry_run: Only report what would change (with a unified diff of the definition).

    Returns:
        The ARN and the action taken.

    Raises:
        AwsError: When a call fails.
    """
    import difflib

    arn = find_state_machine(client, name)
    if arn is None:
        if dry_run:
            return DeployResult(arn="", action="would-create")
        kwargs: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": role_arn,
            "type": "STANDARD",
        }
        if tags:
            kwargs["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        created = _call("CreateStateMachine", client.create_state_machine, **kwargs)
        return DeployResult(arn=str(created["stateMachineArn"]), action="created")

    current = _call("DescribeStateMachine", client.describe_state_machine, stateMachineArn=arn)
    same_definition = _same_json(current.get("definition", ""), definition)
    if same_definition and current.get("roleArn") == role_arn:
        return DeployResult(arn=arn, action="unchanged")
    diff = "".join(
        difflib.unified_diff(
            _pretty(current.get("definition", "")).splitlines(keepends=True),
            _pretty(definition).splitlines(keepends=True),
            fromfile=f"{name} (deployed)",
            tofile=f"{name} (rendered)",
        )
    )
    if current.get("roleArn") != role_arn:
        diff += f"roleArn: {current.get('roleArn')} -> {role_arn}\n"
    if dry_run:
        return DeployResult(arn=arn, action="would-update", diff=diff)
    _call(
        "UpdateStateMachine",
        client.update_state_machine,
        stateMachineArn=arn,
        definition=definition,
        roleArn=role_arn,
    )
    return DeployResult(arn=arn, action="updated", diff=diff)


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------
# start and wait
# ---------------------------------------------------------------------------------------------


def start_execution(
    client: Any, state_machine_arn: str, execution_input: Mapping[str, Any], name: str
) -> str:
    """Start an execution and return its ARN."""
    started = _call(
        "StartExecution",
        client.start_execution,
        stateMachineArn=state_machine_arn,
        name=name,
        input=json.dumps(execution_input),
    )
    return str(started["executionArn"])


@dataclass
class ExecutionResult:
    """The end of an execution."""

    execution_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the execution ended SUCCEEDED."""
        return self.status == "SUCCEEDED"

    def raise_for_status(self) -> None:
        """Raise `ExecutionFailedError` unless the execution succeeded."""
        if not self.succeeded:
            raise ExecutionFailedError(self.execution_arn, self.status, self.error, self.cause)


def iter_new_events(client: Any, execution_arn: str, after_id: int) -> Iterator[dict[str, Any]]:
    """Yield the history events with an id greater than ``after_id``, oldest first.

    The events come without their data (``includeExecutionData=false``: no state input, output
    or task parameters, where a task token would be): following an execution needs names,
    errors and causes only.
    """
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "executionArn": execution_arn,
            "maxResults": 1000,
            "includeExecutionData": False,
        }
        if token:
            kwargs["nextToken"] = token
        page = _call("GetExecutionHistory", client.get_execution_history, **kwargs)
        for event in page.get("events", []):
            if int(event.get("id", 0)) > after_id:
                yield event
        token = page.get("nextToken")
        if not token:
            return


def wait_for_execution(
    client: Any,
    execution_arn: str,
    *,
    region: str = "us-east-1",
    poll_seconds: float = 5.0,
    heartbeat_seconds: float = 60.0,
    timeout_seconds: float | None = None,
    after_event_id: int = 0,
    report: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionResult:
    """Wait until the execution ends, reporting state transitions and heartbeats.

    Args:
        client: A Step Functions client.
        execution_arn: The execution.
        region: For the console URL in heartbeats.
        poll_seconds: Seconds between polls.
        heartbeat_seconds: Seconds between heartbeat lines while nothing new happens.
        timeout_seconds: Give up after this long (None: wait for ever).
        after_event_id: Report only events after this one (a redriven execution).
        report: Receives each line (default: the ``workflow.aws`` logger at INFO).
        clock: Monotonic clock (tests).
        sleep: Sleep function (tests).

    Returns:
        The final status, output, error and cause, and the events seen.

    Raises:
        AwsError: When a call fails or the timeout passes.
    """
    say = report or logger.info
    started = clock()
    last_line = started
    last_id = after_event_id
    current_state = "-"
    events: list[dict[str, Any]] = []
    url = console_url(region, execution_arn)
    execution_name = execution_arn.rsplit(":", 1)[-1]

    def report_new_events() -> None:
        nonlocal last_id, current_state, last_line
        for event in iter_new_events(client, execution_arn, last_id):
            last_id = max(last_id, int(event.get("id", 0)))
            events.append(event)
            if str(event.get("type", "")).endswith("StateEntered"):
                current_state = state_name(event) or current_state
            line = progress_line(event, execution_name=execution_name)
            if line:
                say(f"[{_elapsed(clock() - started)}] {line.strip()}")
                last_line = clock()

    while True:
        report_new_events()
        description = _call(
            "DescribeExecution", client.describe_execution, executionArn=execution_arn
        )
        status = str(description.get("status", "RUNNING"))
        if status in TERMINAL_STATUSES and status != "PENDING_REDRIVE":
            report_new_events()  # the events between the last read and the end
            output = description.get("output")
            return ExecutionResult(
                execution_arn=execution_arn,
                status=status,
                output=json.loads(output) if isinstance(output, str) and output else output,
                error=description.get("error"),
                cause=description.get("cause"),
                events=events,
            )
        now = clock()
        if timeout_seconds is not None and now - started > timeout_seconds:
            raise AwsError(
                f"execution {execution_arn} still {status} after {_elapsed(now - started)}; it "
                f"keeps running: follow it at {url}"
            )
        if now - last_line >= heartbeat_seconds:
            say(
                f"[{_elapsed(now - started)}] still {status} in {current_state}; "
                f"{execution_arn} {url}"
            )
            last_line = now
        sleep(poll_seconds)


def _elapsed(seconds: float) -> str:
    return str(dt.timedelta(seconds=int(seconds)))


# ---------------------------------------------------------------------------------------------
# approve / reject / redrive
# ---------------------------------------------------------------------------------------------


def send_approval(
    client: Any,
    token: str,
    approved: bool,
    *,
    output: Mapping[str, Any] | None = None,
    cause: str | None = None,
) -> None:
    """Answer an approval task token: success, or the failure ``Rejected`` the machine catches."""
    if approved:
        _call(
            "SendTaskSuccess",
            client.send_task_success,
            taskToken=token,
            output=json.dumps(dict(output) if output is not None else {"approved": True}),
        )
    else:
        _call(
            "SendTaskFailure",
            client.send_task_failure,
            taskToken=token,
            error=ERROR_REJECTED,
            cause=cause or "rejected with 'python -m workflow reject'",
        )


def redrive(client: Any, execution_arn: str) -> dt.datetime | None:
    """Redrive a failed execution from its failed state (RedriveExecution); return its date."""
    answer = _call("RedriveExecution", client.redrive_execution, executionArn=execution_arn)
    date = answer.get("redriveDate")
    return date if isinstance(date, dt.datetime) else None


def last_event_id(client: Any, execution_arn: str) -> int:
    """Return the id of the newest history event of an execution (0 when there is none)."""
    page = _call(
        "GetExecutionHistory",
        client.get_execution_history,
        executionArn=execution_arn,
        maxResults=1,
        reverseOrder=True,
        includeExecutionData=False,
    )
    events = page.get("events", [])
    return int(events[0]["id"]) if events else 0


__all__ = [
    "DeployResult",
    "ExecutionResult",
    "console_url",
    "deploy",
    "find_state_machine",
    "iter_new_events",
    "last_event_id",
    "redrive",
    "send_approval",
    "start_execution",
    "wait_for_execution",
]
