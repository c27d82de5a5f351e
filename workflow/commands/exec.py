"""``python -m workflow exec DEFINITION.json --input INPUT.json``: run any ASL document locally.

The document runs on the local engine with every local handler (SageMaker jobs and endpoints as
local processes, SNS to the outbox, the workflow's Lambdas in-process). The execution's output
JSON goes to stdout and the exit code is 0 when it SUCCEEDED; otherwise the exit code is 1, stderr
says ``error: execution FAILED: ERROR: CAUSE`` and its last line is ``{"error": ..., "cause": ...}``.
A document AWS would refuse (InvalidDefinition) is refused before anything runs: exit code 2.

Foreign workflows: ``--lambda NAME=module:function`` registers your own Lambda handler (called
as ``function(event, context)``); ``--mock-config FILE --test-case CASE`` mocks Task states with
AWS Step Functions Local's mock configuration (``StateMachines.<name>.TestCases.<case>`` ->
``MockedResponses`` with ``Return``/``Throw``; ``<name>`` is ``--state-machine``, default the
definition file's stem). An activity Task (``arn:aws:states:REGION:ACCOUNT:activity:NAME``) has
no worker here: mock it with ``--mock-config``, or it fails the execution with ``States.Runtime``
as on AWS when the activity does not exist; ``python -m workflow api`` serves workers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from workflow.commands import APPROVE_CHOICE, Options, WorkflowCommand, pass_options
from workflow.errors import ConfigError


@click.command(
    "exec",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="run any ASL document with the local handlers; print its output JSON",
)
@click.argument("definition", metavar="DEFINITION.json")
@click.option(
    "--input", "input_file", metavar="INPUT.json", help="the execution input file (default: {})"
)
@click.option("--name", help="execution name (default: a UUID)")
@click.option(
    "--approve",
    type=APPROVE_CHOICE,
    default=None,
    help="how the approval Lambda answers its task token (default from local.approve)",
)
@click.option(
    "--timeout", type=float, default=None, help="stop the execution after this many seconds"
)
@click.option(
    "--lambda",
    "lambdas",
    multiple=True,
    metavar="NAME=module:function",
    help="register a Python function as the Lambda function NAME (repeatable)",
)
@click.option("--mock-config", metavar="FILE", help="AWS Step Functions Local mock configuration")
@click.option("--test-case", help="the test case of --mock-config to run")
@click.option(
    "--state-machine", help="the state machine name in --mock-config (default: file stem)"
)
@click.option(
    "--keep-endpoint",
    is_flag=True,
    help="leave the endpoints the execution created running (see 'endpoints list')",
)
@pass_options
def exec_command(
    options: Options,
    definition: str,
    input_file: str | None,
    name: str | None,
    approve: str | None,
    timeout: float | None,
    lambdas: tuple[str, ...],
    mock_config: str | None,
    test_case: str | None,
    state_machine: str | None,
    keep_endpoint: bool,
) -> int:
    """Run the document and return the exit code."""
    from workflow.local.documents import load_lambda, run_document

    document = _read_json(definition, "definition")
    execution_input = _read_json(input_file, "input") if input_file else {}
    functions = [load_lambda(spec) for spec in lambdas]
    mocks = _mocks(definition, mock_config, test_case, state_machine)
    outcome = run_document(
        options.load_config(),
        document,
        execution_input,
        name=name,
        approve=approve,
        timeout=timeout,
        lambdas=functions,
        mocks=mocks,
        keep_endpoints=keep_endpoint,
    )
    if outcome.succeeded:
        sys.stdout.write(json.dumps(outcome.output, default=str) + "\n")
        return 0
    if outcome.state:
        print(
            f"execution {outcome.status} (first failure in state {outcome.state})", file=sys.stderr
        )
    print(f"error: execution {outcome.status}: {outcome.error}: {outcome.cause}", file=sys.stderr)
    print(json.dumps({"error": outcome.error, "cause": outcome.cause}), file=sys.stderr, flush=True)
    return 1


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ConfigError(
            [f"{what} {path!r} cannot be read ({exc.strerror}); check the path"]
        ) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError([f"{what} {path!r} is not JSON ({exc}); pass a JSON file"]) from exc


def _mocks(
    definition: str, mock_config: str | None, test_case: str | None, state_machine: str | None
) -> Any:
    if mock_config is None and test_case is None:
        return None
    if mock_config is None or test_case is None:
        raise ConfigError(["--mock-config and --test-case go together; give both"])
    from workflow.local.mocks import load_mock_config

    machine = state_machine or (Path(definition).stem if definition != "-" else "local")
    return load_mock_config(Path(mock_config), machine, test_case)


COMMANDS = (exec_command,)
