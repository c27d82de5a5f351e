"""``python -m workflow deploy``: create or update the state machine; print its ARN."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from workflow.commands import add_endpoint_url

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``deploy`` command."""
    parser = subparsers.add_parser(
        "deploy",
        help="create or update the state machine (idempotent); print its ARN",
        description=(
            "Render the definition, validate it offline, and create the state machine or update "
            "it when its definition or role changed. Prints the ARN on stdout."
        ),
    )
    add_endpoint_url(parser)
    parser.add_argument(
        "--role-arn", metavar="ARN", help="role of the state machine (default: roles.state_machine)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would change (a diff); change nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Deploy."""
    from workflow.aws import console_url, deploy
    from workflow.commands import config_from_args, sfn_client
    from workflow.definition import render_json
    from workflow.errors import ValidationError
    from workflow.validate import validate_definition

    config = config_from_args(args)
    definition = render_json(config)
    import json

    problems = validate_definition(json.loads(definition))
    if problems:
        raise ValidationError(problems, source="rendered definition (not deployed)")
    client = sfn_client(config.region, args.endpoint_url)
    result = deploy(
        client,
        config.name,
        definition,
        args.role_arn or config.roles.state_machine,
        tags={"project": config.name},
        dry_run=args.dry_run,
    )
    if result.diff and args.dry_run:
        sys.stderr.write(result.diff)
    if result.action == "would-create":
        logger.info("would create state machine %s", config.name)
        return 0
    logger.info("%s state machine %s", result.action, result.arn)
    logger.info("console: %s", console_url(config.region, result.arn))
    print(result.arn)
    return 0
