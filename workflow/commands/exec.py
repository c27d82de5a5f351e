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
definition file's stem).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workflow.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``exec`` command."""
    parser = subparsers.add_parser(
        "exec",
        help="run any ASL document with the local handlers; print its output JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "definition", metavar="DEFINITION.json", help="the ASL document ('-': stdin)"
    )
    parser.add_argument(
        "--input", metavar="INPUT.json", help="the execution input file (default: {})"
    )
    parser.add_argument("--name", help="execution name (default: a UUID)")
    parser.add_argument(
        "--approve",
        choices=("auto", "manual"),
        default=None,
        help="how the approval Lambda answers its task token (default from local.approve)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="stop the execution after this many seconds"
    )
    parser.add_argument(
        "--lambda",
        dest="lambdas",
        action="append",
        default=[],
        metavar="NAME=module:function",
        help="register a Python function as the Lambda function NAME (repeatable)",
    )
    parser.add_argument(
        "--mock-config", metavar="FILE", help="AWS Step Functions Local mock configuration"
    )
    parser.add_argument("--test-case", help="the test case of --mock-config to run")
    parser.add_argument(
        "--state-machine", help="the state machine name in --mock-config (default: file stem)"
    )
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help="leave the endpoints the execution created running (see 'endpoints list')",
    )
    parser.set_defaults(handler=run)


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


def _load_function(spec: str) -> tuple[str, Any]:
    import importlib

    name, _, target = spec.partition("=")
    module_name, _, attribute = target.partition(":")
    if not (name and module_name and attribute):
        raise ConfigError(
            [
                f"--lambda {spec!r} is not NAME=module:function; e.g. --lambda evaluate=my_pkg.fn:handler"
            ]
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            [f"--lambda {spec!r}: cannot load {target!r} ({exc}); check PYTHONPATH and the name"]
        ) from exc
    if not callable(function):
        raise ConfigError([f"--lambda {spec!r}: {target!r} is not a function"])
    return name, function


def _mocks(args: argparse.Namespace) -> Any:
    if args.mock_config is None and args.test_case is None:
        return None
    if args.mock_config is None or args.test_case is None:
        raise ConfigError(["--mock-config and --test-case go together; give both"])
    from workflow.local.mocks import load_mock_config

    machine = args.state_machine or (
        Path(args.definition).stem if args.definition != "-" else "local"
    )
    return load_mock_config(Path(args.mock_config), machine, args.test_case)


def run(args: argparse.Namespace) -> int:
    """Run the document and return the exit code."""
    from workflow.commands import config_from_args
    from workflow.local.report import Progress, failing_state
    from workflow.local.runtime import LocalRuntime

    definition = _read_json(args.definition, "definition")
    document = _read_json(args.input, "input") if args.input else {}
    functions = [_load_function(spec) for spec in args.lambdas]
    mocks = _mocks(args)
    config = config_from_args(args)
    progress = Progress()
    runtime = LocalRuntime(
        config, approve=args.approve, log_sink=progress.log_sink, say=progress.print
    )
    runtime.engine.check_definition(definition)  # InvalidDefinition: exit 2, nothing ran
    unsubscribe = runtime.engine.on_event(progress)
    try:
        runtime.install()
        for name, function in functions:
            runtime.engine.register_lambda(name, function)
        execution = runtime.engine.start_execution(
            definition, document, name=args.name, mocks=mocks
        )
        progress.start_heartbeat()
        try:
            execution.wait(args.timeout)
            if not execution.done:
                execution.stop("States.Timeout", f"exec --timeout {args.timeout:g} s passed")
                execution.wait(60)
        except KeyboardInterrupt:
            execution.stop("Interrupted", "stopped with Ctrl-C")
            execution.wait(60)
    finally:
        progress.stop_heartbeat()
        unsubscribe()
        runtime.close(keep_endpoints=args.keep_endpoint)
    if execution.status == "SUCCEEDED":
        sys.stdout.write(json.dumps(execution.output, default=str) + "\n")
        return 0
    state, error, cause = failing_state(execution.history())
    error = execution.error or error or execution.status
    cause = execution.cause or cause or ""
    if state:
        print(f"execution {execution.status} (first failure in state {state})", file=sys.stderr)
    print(f"error: execution {execution.status}: {error}: {cause}", file=sys.stderr)
    print(json.dumps({"error": error, "cause": cause}), file=sys.stderr, flush=True)
    return 1
