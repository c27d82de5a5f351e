"""``python -m workflow deploy``: create or update the state machine; print its ARN."""

from __future__ import annotations

import json
import logging
import sys

import click

from workflow import commands
from workflow.commands import Options, WorkflowCommand, endpoint_url_option, pass_options

logger = logging.getLogger(__name__)


@click.command(
    "deploy",
    cls=WorkflowCommand,
    short_help="create or update the state machine (idempotent); print its ARN",
)
@endpoint_url_option
@click.option(
    "--role-arn", metavar="ARN", help="role of the state machine (default: roles.state_machine)"
)
@click.option("--dry-run", is_flag=True, help="show what would change (a diff); change nothing")
@pass_options
def deploy(options: Options, endpoint_url: str | None, role_arn: str | None, dry_run: bool) -> int:
    """Render the definition, validate it offline, and create or update the state machine.

    The state machine is updated when its definition or role changed. Prints the ARN on stdout.
    """
    from workflow import aws
    from workflow.definition import render_json
    from workflow.errors import ValidationError
    from workflow.validate import validate_definition

    config = options.load_config()
    definition = render_json(config)
    problems = validate_definition(json.loads(definition))
    if problems:
        raise ValidationError(problems, source="rendered definition (not deployed)")
    client = commands.sfn_client(config.region, endpoint_url)
    result = aws.deploy(
        client,
        config.name,
        definition,
        role_arn or config.roles.state_machine,
        tags={"project": config.name},
        dry_run=dry_run,
    )
    if result.diff and dry_run:
        sys.stderr.write(result.diff)
    if result.action == "would-create":
        logger.info("would create state machine %s", config.name)
        return 0
    logger.info("%s state machine %s", result.action, result.arn)
    logger.info("console: %s", aws.console_url(config.region, result.arn))
    print(result.arn)
    return 0


COMMANDS = (deploy,)
