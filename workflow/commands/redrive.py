"""``python -m workflow redrive EXECUTION_ARN``: restart a failed execution where it failed.

Step Functions' RedriveExecution reruns an execution that ended FAILED, TIMED_OUT or ABORTED
(within 14 days, same definition) from its unsuccessful states, keeping what succeeded. Like
``start``, it waits by default and exits 1 unless the execution then succeeds.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from workflow.commands import add_endpoint_url

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``redrive`` command."""
    parser = subparsers.add_parser(
        "redrive",
        help="redrive a failed execution from its failed state (RedriveExecution)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("execution_arn", metavar="EXECUTION_ARN")
    add_endpoint_url(parser)
    parser.add_argument("--no-wait", action="store_true", help="return once redriven")
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=60.0)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Redrive (and wait)."""
    from workflow.aws import console_url, last_event_id, redrive, wait_for_execution
    from workflow.commands import config_from_args, sfn_client
    from workflow.errors import WorkflowError

    arn = args.execution_arn.strip()
    if ":execution:" not in arn:
        raise WorkflowError(
            f"{arn!r} is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:...); "
            "copy it from 'start' output"
        )
    config = config_from_args(args)
    region = arn.split(":")[3] or config.region
    client = sfn_client(region, args.endpoint_url)
    seen = 0 if args.no_wait else last_event_id(client, arn)
    date = redrive(client, arn)
    print(arn, flush=True)
    logger.info(
        "redriven%s; console: %s",
        f" at {date:%Y-%m-%d %H:%M:%S}" if date else "",
        console_url(region, arn),
    )
    if args.no_wait:
        return 0
    result = wait_for_execution(
        client,
        arn,
        region=region,
        poll_seconds=args.poll_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        after_event_id=seen,
    )
    result.raise_for_status()
    logger.info("execution %s SUCCEEDED", arn)
    return 0
