"""``python -m workflow api``: a local AWS endpoint that real clients use as they use AWS.

Serves, on one loopback port, Step Functions (state machines, executions, history, task tokens,
redrive, ValidateStateMachineDefinition, TestState) on the local engine with the local handlers
and store (``local.root``) exactly as ``run --local`` wires them; the SageMaker reads of local
resources (Describe*/List* of training jobs, models, endpoint configs, endpoints, transform
jobs); and SageMaker Runtime's InvokeEndpoint for the local endpoints.

The first line on stdout is the URL (``http://127.0.0.1:PORT``) once it answers; logs go to
stderr. Point clients at it with ``endpoint_url=URL`` or, for every client of a shell::

    export AWS_ENDPOINT_URL_SFN=URL AWS_ENDPOINT_URL_SAGEMAKER=URL
    export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=URL
    export AWS_DISABLE_HOST_PREFIX_INJECTION=true   # StartSyncExecution and TestState only

Any credentials work. Ctrl-C or SIGTERM stops the server, the executions, the jobs and the
endpoints it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``api`` command."""
    parser = subparsers.add_parser(
        "api",
        help="serve a local AWS endpoint (Step Functions, SageMaker, SageMaker Runtime)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default 0: a free port)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--approve",
        choices=("auto", "manual"),
        default=None,
        help="how approval tasks are answered (default: local.approve)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return 0."""
    from workflow.api import ApiServer, LocalAwsApi
    from workflow.commands import config_from_args
    from workflow.local.runtime import LocalRuntime

    if not 0 <= args.port <= 65535:
        from workflow.errors import ConfigError

        raise ConfigError([f"--port {args.port} is not a port (0-65535; 0 picks a free one)"])
    config = config_from_args(args)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    runtime = LocalRuntime(config, approve=args.approve)
    try:
        runtime.install()
        server = ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker), args.host, args.port)
        with server:
            print(server.url, flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping the local AWS API", file=sys.stderr, flush=True)
    finally:
        runtime.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
