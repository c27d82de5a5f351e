"""``python -m workflow start``: start an execution, wait for it, exit with its outcome.

The input comes from `workflow.naming.execution_input`: the commit from ``--commit``, else
``CODEBUILD_RESOLVED_SOURCE_VERSION``, else ``git rev-parse HEAD``; the image from
``--image-uri``, else ``IMAGE_URI`` (none: the state machine builds it); the state machine from
``--state-machine-arn``, else ``STATE_MACHINE_ARN``, else the one named ``name`` in the region.
By default it waits, printing each state transition and a heartbeat on stderr, and exits 1 when
the execution does not succeed. ``--no-wait`` prints the execution ARN and returns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from workflow import commands
from workflow.commands import Options, WorkflowCommand, endpoint_url_option, pass_options

logger = logging.getLogger(__name__)

ENV_IMAGE_URI = "IMAGE_URI"
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"


@click.command(
    "start",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="start an execution on AWS and wait for its outcome (exit 1 unless it succeeds)",
)
@endpoint_url_option
@click.option("--commit", help="commit ID (default: CodeBuild's, else git HEAD)")
@click.option("--image-uri", help="image to train and serve (default: $IMAGE_URI)")
@click.option(
    "--state-machine-arn", help="state machine (default: $STATE_MACHINE_ARN, else by name)"
)
@click.option("--no-wait", is_flag=True, help="print the execution ARN and return at once")
@click.option("--poll-seconds", type=float, default=10.0, help="seconds between polls (default 10)")
@click.option(
    "--heartbeat-seconds",
    type=float,
    default=60.0,
    help="seconds between 'still running' lines (default 60)",
)
@click.option(
    "--timeout-seconds",
    type=float,
    default=None,
    help="stop waiting (exit 1) after this long; the execution keeps running",
)
@click.option(
    "--endpoint-poll-seconds",
    type=int,
    default=None,
    help="DescribeEndpoint interval inside the state machine (default: endpoint.poll_seconds)",
)
@pass_options
def start(
    options: Options,
    endpoint_url: str | None,
    commit: str | None,
    image_uri: str | None,
    state_machine_arn: str | None,
    no_wait: bool,
    poll_seconds: float,
    heartbeat_seconds: float,
    timeout_seconds: float | None,
    endpoint_poll_seconds: int | None,
) -> int:
    """Start (and wait)."""
    from workflow.aws import (
        console_url,
        find_state_machine,
        start_execution,
        wait_for_execution,
    )
    from workflow.errors import AwsError, WorkflowError
    from workflow.naming import execution_input, resolve_commit

    env = os.environ
    config = options.load_config(environ=env)
    for name, value in (("poll-seconds", poll_seconds), ("heartbeat-seconds", heartbeat_seconds)):
        if value <= 0:
            raise WorkflowError(f"--{name} must be positive; e.g. 10")
    client = commands.sfn_client(config.region, endpoint_url)
    machine = state_machine_arn or env.get(ENV_STATE_MACHINE_ARN) or ""
    if not machine:
        machine = find_state_machine(client, config.name) or ""
        if not machine:
            raise AwsError(
                f"state machine {config.name!r} is not deployed in {config.region}; run "
                "'python -m workflow deploy' or pass --state-machine-arn"
            )
    commit = commit or resolve_commit(env, Path.cwd())
    image = image_uri or env.get(ENV_IMAGE_URI) or None
    data = execution_input(config, commit, image, poll_seconds=endpoint_poll_seconds)
    arn = start_execution(client, machine, data, name=data["JobName"])
    print(arn, flush=True)
    logger.info(
        "started %s for commit %s (%s)",
        data["JobName"],
        commit[:12],
        f"image {image}" if image else "the state machine builds the image",
    )
    logger.info("console: %s", console_url(config.region, arn))
    if no_wait:
        return 0
    result = wait_for_execution(
        client,
        arn,
        region=config.region,
        poll_seconds=poll_seconds,
        heartbeat_seconds=heartbeat_seconds,
        timeout_seconds=timeout_seconds,
    )
    result.raise_for_status()
    logger.info("execution %s SUCCEEDED", arn)
    return 0


COMMANDS = (start,)
