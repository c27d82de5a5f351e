"""``python -m workflow infra``: the CloudFormation/SAM template with the current definition."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import click

from workflow.commands import Options, WorkflowCommand, pass_options

logger = logging.getLogger(__name__)


@click.command(
    "infra",
    cls=WorkflowCommand,
    short_help="render infra/template.yaml with the current state machine definition",
)
@click.option(
    "--output", metavar="FILE", help="write the template here and stage lambda/ beside it"
)
@click.option("--force", is_flag=True, help="replace FILE and its lambda/ when they exist")
@click.option(
    "--print-overrides",
    "parameters_file",
    metavar="PARAMETERS_JSON",
    help=(
        "instead of the template, print the Key=Value list of a parameters file "
        "(e.g. infra/parameters.json) for 'sam deploy --parameter-overrides'"
    ),
)
@pass_options
def infra(options: Options, output: str | None, force: bool, parameters_file: str | None) -> int:
    """Render the CloudFormation/SAM template (infra/template.yaml).

    The template gets the state machine definition that 'render' prints (account-specific ARNs
    become DefinitionSubstitutions) and the resource names of the configuration. Without
    --output the template goes to stdout; with it, the Lambda code is staged in lambda/ beside
    the file, ready for 'sam build -t FILE'.
    """
    from workflow import infra as templates

    if parameters_file:
        values = templates.read_parameters(Path(parameters_file), templates.load_template())
        print(" ".join(shlex.quote(f"{key}={value}") for key, value in values.items()))
        return 0
    config = options.load_config()
    if output:
        print(templates.write_rendered(config, Path(output), force=force))
        return 0
    logger.info("the Lambda code is not staged without --output; CodeUri 'lambda/' must exist")
    sys.stdout.write(templates.dump_template(templates.render_template(config)))
    return 0


COMMANDS = (infra,)
