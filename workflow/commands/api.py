"""``python -m workflow api``: a local AWS endpoint that real clients use as they use AWS.

Serves, on one loopback port, Step Functions (state machines, executions, history, task tokens,
redrive, ValidateStateMachineDefinition, TestState) on the local engine with the local handlers
and store (``local.root``) exactly as ``run --local`` wires them; the SageMaker reads of local
resources (Describe*/List* of training jobs, models, endpoint configs, endpoints, transform
jobs); and SageMaker Runtime's InvokeEndpoint for the local endpoints.

The first line on stdout is the URL (``http://127.0.0.1:PORT``) once it answers; logs go to
stderr. Point clients at it with ``endpoint_url=URL`` or, for every client of a shell:

\b
    export AWS_ENDPOINT_URL_SFN=URL AWS_ENDPOINT_URL_SAGEMAKER=URL
    export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=URL
    export AWS_DISABLE_HOST_PREFIX_INJECTION=true   # StartSyncExecution and TestState only

Any credentials work. Ctrl-C or SIGTERM stops the server, the executions, the jobs and the
endpoints it started.
"""

from __future__ import annotations

import click

from workflow.commands import APPROVE_CHOICE, Options, WorkflowCommand, pass_options
from workflow.errors import ConfigError


@click.command(
    "api",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="serve a local AWS endpoint (Step Functions, SageMaker, SageMaker Runtime)",
)
@click.option("--port", type=int, default=0, help="port to listen on (default 0: a free port)")
@click.option("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
@click.option(
    "--approve",
    type=APPROVE_CHOICE,
    default=None,
    help="how approval tasks are answered (default: local.approve)",
)
@pass_options
def api(options: Options, port: int, host: str, approve: str | None) -> int:
    """Serve until SIGINT or SIGTERM; return 0."""
    from workflow.api.serve import serve_until_signal

    if not 0 <= port <= 65535:
        raise ConfigError([f"--port {port} is not a port (0-65535; 0 picks a free one)"])
    serve_until_signal(
        options.load_config(),
        host=host,
        port=port,
        approve=approve,
        ready=lambda url: print(url, flush=True),
    )
    return 0


COMMANDS = (api,)
