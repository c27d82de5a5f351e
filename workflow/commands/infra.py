"""``python -m workflow infra``: the CloudFormation/SAM template with the current definition."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``infra`` command."""
    parser = subparsers.add_parser(
        "infra",
        help="render infra/template.yaml with the current state machine definition",
        description=(
            "Render the CloudFormation/SAM template (infra/template.yaml) with the state machine "
            "definition that 'render' prints (account-specific ARNs become "
            "DefinitionSubstitutions) and the resource names of the configuration. Without "
            "--output the template goes to stdout; with it, the Lambda code is staged in "
            "lambda/ beside the file, ready for 'sam build -t FILE'."
        ),
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write the template here and stage lambda/ beside it"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace FILE and its lambda/ when they exist"
    )
    parser.add_argument(
        "--print-overrides",
        dest="parameters_file",
        metavar="PARAMETERS_JSON",
        help=(
            "instead of the template, print the Key=Value list of a parameters file "
            "(e.g. infra/parameters.json) for 'sam deploy --parameter-overrides'"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render the template, or print the parameter overrides of a parameters file."""
    from workflow import infra
    from workflow.commands import config_from_args

    if args.parameters_file:
        values = infra.read_parameters(Path(args.parameters_file), infra.load_template())
        print(" ".join(shlex.quote(f"{key}={value}") for key, value in values.items()))
        return 0
    config = config_from_args(args)
    if args.output:
        path = infra.write_rendered(config, Path(args.output), force=args.force)
        print(path)
        return 0
    logger.info("the Lambda code is not staged without --output; CodeUri 'lambda/' must exist")
    sys.stdout.write(infra.dump_template(infra.render_template(config)))
    return 0
