"""``python -m workflow exec DEFINITION.json --input INPUT.json``: run any ASL document locally.

The document runs on the local engine with every local handler (SageMaker jobs and endpoints as
local processes, SNS to the outbox, the workflow's Lambdas in-process). The execution's output
JSON goes to stdout and the exit code is 0 when it SUCCEEDED; otherwise the exit code is 1 and
the last line of stderr is ``{"error": ..., "cause": ...}``.
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


def run(args: argparse.Namespace) -> int:
    """Run the document and return the exit code."""
    from workflow.commands import config_from_args
    from workflow.local.report import Progress, failing_state
    from workflow.local.runtime import LocalRuntime

    definition = _read_json(args.definition, "definition")
    document = _read_json(args.input, "input") if args.input else {}
    config = config_from_args(args)
    progress = Progress()
    runtime = LocalRuntime(
        config, approve=args.approve, log_sink=progress.log_sink, say=progress.print
    )
    unsubscribe = runtime.engine.on_event(progress)
    try:
        runtime.install()
        execution = runtime.engine.start_execution(definition, document, name=args.name)
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
    print(json.dumps({"error": error, "cause": cause}), file=sys.stderr, flush=True)
    return 1
