"""``python -m workflow validate``: check the state machine offline, one line per problem."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from workflow.commands import Options, WorkflowCommand, pass_options
from workflow.errors import ValidationError, WorkflowError

logger = logging.getLogger(__name__)


@click.command(
    "validate",
    cls=WorkflowCommand,
    short_help="check the ASL offline: structure, Choice/Retry/Catch, task Parameters vs botocore",
)
@click.option(
    "--file",
    "file",
    metavar="ASL_JSON",
    help="check this ASL document instead of the one rendered from the configuration",
)
@click.option("--no-statelint", is_flag=True, help="skip statelint even when it is installed")
@pass_options
def validate(options: Options, file: str | None, no_statelint: bool) -> int:
    """Check the state machine without AWS.

    States, transitions, reachability and names; Choice rules, Retry and Catch; and the static
    Parameters of every SageMaker, Lambda, SNS, CodeBuild, SSM and Step Functions task against
    botocore's model of that API. Prints one line per problem on stdout and exits 1 when there
    is any.
    """
    from workflow.validate import validate_definition

    if file:
        document = _load_document(Path(file))
        source = file
    else:
        from workflow.definition import render_definition

        document = render_definition(options.load_config())
        source = "rendered definition"
    problems = validate_definition(document, lint=not no_statelint)
    if problems:
        for problem in problems:
            print(problem)
        raise ValidationError(
            [f"{len(problems)} problem(s) in the {source}; fix them before deploying"]
        )
    states = len(document.get("States", {})) if isinstance(document, dict) else 0
    logger.info("ok: %s is valid (%d states)", source, states)
    return 0


def _load_document(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"{path} does not exist; pass the path of an ASL JSON file") from None
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"{path} is not JSON ({exc.msg} at line {exc.lineno}); pass an ASL JSON file "
            "(e.g. the output of 'python -m workflow render')"
        ) from exc


COMMANDS = (validate,)
