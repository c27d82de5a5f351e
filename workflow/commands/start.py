"""``python -m workflow start``: start an execution, wait for it, exit with its outcome.

The input comes from `workflow.naming.execution_input`: the commit from ``--commit``, else
``CODEBUILD_RESOLVED_SOURCE_VERSION``, else ``git rev-parse HEAD``; the image from
``--image-uri``, else ``IMAGE_URI`` (none: the state machine builds it); the state machine from
``--state-machine-arn``, else ``STATE_MACHINE_ARN``, else the one named ``name`` in the region.
By default it waits, printing each state transition and a heartbeat on stderr, and exits 1 when
the execution does not succeed. ``--no-wait`` prints the execution ARN and returns.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.commands import add_endpoint_url

logger = logging.getLogger(__name__)

ENV_IMAGE_URI = "IMAGE_URI"
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"


def register(subparsers: Any) -> None:
    """Add the ``start`` command."""
    parser = subparsers.add_parser(
        "start",
        help="start an execution on AWS and wait for its outcome (exit 1 unless it succeeds)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``start`` (shared with invoke_sfn.py)."""
    add_endpoint_url(parser)
    parser.add_argument("--commit", help="commit ID (default: CodeBuild's, else git HEAD)")
    parser.add_argument("--image-uri", help="image to train and serve (default: $IMAGE_URI)")
    parser.add_argument(
        "--state-machine-arn", help="state machine (default: $STATE_MACHINE_ARN, else by name)"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="print the execution ARN and return at once"
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=10.0, help="seconds between polls (default 10)"
    )
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=60.0,
        help="seconds between 'still running' lines (default 60)",
    )
    parser.add_argument(
        "--timeout-seconds",
        type=float,
        default=None,
        help="stop waiting (exit 1) after this long; the execution keeps running",
    )
    parser.add_argument(
        "--endpoint-poll-seconds",
        type=int,
        default=None,
        help="DescribeEndpoint interval inside the state machine (default: endpoint.poll_seconds)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Start (and wait)."""
    from workflow.aws import (
        console_url,
        find_state_machine,
        start_execution,
        wait_for_execution,
    )
    from workflow.commands import config_from_args, sfn_client
    from workflow.errors import AwsError, WorkflowError
    from workflow.naming import execution_input, resolve_commit

    env = os.environ if environ is None else environ
    config = config_from_args(args, environ=env)
    for name in ("poll_seconds", "heartbeat_seconds"):
        if getattr(args, name) <= 0:
            raise WorkflowError(f"--{name.replace('_', '-')} must be positive; e.g. 10")
    client = sfn_client(config.region, args.endpoint_url)
    machine = args.state_machine_arn or env.get(ENV_STATE_MACHINE_ARN) or ""
    if not machine:
        machine = find_state_machine(client, config.name) or ""
        if not machine:
            raise AwsError(
                f"state machine {config.name!r} is not deployed in {config.region}; run "
                "'python -m workflow deploy' or pass --state-machine-arn"
            )
    commit = args.commit or resolve_commit(env, Path.cwd())
    image = args.image_uri or env.get(ENV_IMAGE_URI) or None
    data = execution_input(config, commit, image, poll_seconds=args.endpoint_poll_seconds)
    arn = start_execution(client, machine, data, name=data["JobName"])
    print(arn, flush=True)
    logger.info(
        "started %s for commit %s (%s)",
        data["JobName"],
        commit[:12],
        f"image {image}" if image else "the state machine builds the image",
    )
    logger.info("console: %s", console_url(config.region, arn))
    if args.no_wait:
        return 0
    result = wait_for_execution(
        client,
        arn,
        region=config.region,
        poll_seconds=args.poll_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        timeout_seconds=args.timeout_seconds,
    )
    result.raise_for_status()
    logger.info("execution %s SUCCEEDED", arn)
    return 0
