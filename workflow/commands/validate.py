"""``python -m workflow validate``: check the state machine offline, one line per problem."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from workflow.errors import ValidationError, WorkflowError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``validate`` command."""
    parser = subparsers.add_parser(
        "validate",
        help="check the ASL offline: structure, Choice/Retry/Catch, task Parameters vs botocore",
        description=(
            "Check the state machine without AWS: states, transitions, reachability and names; "
            "Choice rules, Retry and Catch; and the static Parameters of every SageMaker, "
            "Lambda, SNS, CodeBuild, SSM and Step Functions task against botocore's model of "
            "that API. Prints one line per problem on stdout and exits 1 when there is any."
        ),
    )
    parser.add_argument(
        "--file",
        metavar="ASL_JSON",
        help="check this ASL document instead of the one rendered from the configuration",
    )
    parser.add_argument(
        "--no-statelint", action="store_true", help="skip statelint even when it is installed"
    )
    parser.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    """Validate and report."""
    from workflow.validate import validate_definition

    if args.file:
        document = _load_document(Path(args.file))
        source = args.file
    else:
        from workflow.commands import config_from_args
        from workflow.definition import render_definition

        document = render_definition(config_from_args(args))
        source = "rendered definition"
    problems = validate_definition(document, lint=not args.no_statelint)
    if problems:
        for problem in problems:
            print(problem)
        raise ValidationError(
            [f"{len(problems)} problem(s) in the {source}; fix them before deploying"]
        )
    states = len(document.get("States", {})) if isinstance(document, dict) else 0
    logger.info("ok: %s is valid (%d states)", source, states)
    return 0
