"""``python -m workflow redrive EXECUTION_ARN``: restart a failed execution where it failed.

Step Functions' RedriveExecution reruns an execution that ended FAILED, TIMED_OUT or ABORTED
(within 14 days, same definition) from its unsuccessful states, keeping what succeeded. Like
``start``, it waits by default and exits 1 unless the execution then succeeds.
"""

from __future__ import annotations

import logging

import click

from workflow import commands
from workflow.commands import Options, WorkflowCommand, endpoint_url_option, pass_options

logger = logging.getLogger(__name__)


@click.command(
    "redrive",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="redrive a failed execution from its failed state (RedriveExecution)",
)
@click.argument("execution_arn", metavar="EXECUTION_ARN")
@endpoint_url_option
@click.option("--no-wait", is_flag=True, help="return once redriven")
@click.option("--poll-seconds", type=float, default=10.0)
@click.option("--heartbeat-seconds", type=float, default=60.0)
@pass_options
def redrive(
    options: Options,
    execution_arn: str,
    endpoint_url: str | None,
    no_wait: bool,
    poll_seconds: float,
    heartbeat_seconds: float,
) -> int:
    """Redrive (and wait)."""
    from workflow import aws
    from workflow.errors import WorkflowError

    arn = execution_arn.strip()
    if ":execution:" not in arn:
        raise WorkflowError(
            f"{arn!r} is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:...); "
            "copy it from 'start' output"
        )
    config = options.load_config()
    region = arn.split(":")[3] or config.region
    client = commands.sfn_client(region, endpoint_url)
    seen = 0 if no_wait else aws.last_event_id(client, arn)
    date = aws.redrive(client, arn)
    print(arn, flush=True)
    logger.info(
        "redriven%s; console: %s",
        f" at {date:%Y-%m-%d %H:%M:%S}" if date else "",
        aws.console_url(region, arn),
    )
    if no_wait:
        return 0
    result = aws.wait_for_execution(
        client,
        arn,
        region=region,
        poll_seconds=poll_seconds,
        heartbeat_seconds=heartbeat_seconds,
        after_event_id=seen,
    )
    result.raise_for_status()
    logger.info("execution %s SUCCEEDED", arn)
    return 0


COMMANDS = (redrive,)
