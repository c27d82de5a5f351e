"""``python -m workflow approve TOKEN`` / ``reject TOKEN``: answer the approval task token.

A local run waiting on the token gets the answer through its callback folder; otherwise the
answer goes to Step Functions (SendTaskSuccess, or SendTaskFailure with the error ``Rejected``,
which the state machine catches, notifies and fails with).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from workflow import commands
from workflow.commands import Options, WorkflowCommand, endpoint_url_option, pass_options

logger = logging.getLogger(__name__)

HELP = f"{__doc__}\nTOKEN: the task token from the approval mail."


@click.command(
    "approve",
    cls=WorkflowCommand,
    help=HELP,
    short_help="approve a deployment waiting on its task token (local run or AWS)",
)
@click.argument("token", metavar="TOKEN")
@click.option("--output", metavar="JSON", help='task output (default: {"approved": true})')
@endpoint_url_option
@pass_options
def approve(options: Options, token: str, output: str | None, endpoint_url: str | None) -> int:
    """Answer the token: approved."""
    return _answer(options, token, True, output, None, endpoint_url)


@click.command(
    "reject",
    cls=WorkflowCommand,
    help=HELP,
    short_help="reject a deployment waiting on its task token: the execution fails 'Rejected'",
)
@click.argument("token", metavar="TOKEN")
@click.option("--cause", help="why (shown in the failure notification)")
@endpoint_url_option
@pass_options
def reject(options: Options, token: str, cause: str | None, endpoint_url: str | None) -> int:
    """Answer the token: rejected."""
    return _answer(options, token, False, None, cause, endpoint_url)


def _parse_output(text: str | None) -> dict[str, Any] | None:
    from workflow.errors import WorkflowError

    if text is None:
        return None
    try:
        output = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"--output {text!r} is not JSON ({exc.msg}); e.g. --output '{{\"ok\": 1}}'"
        ) from exc
    if not isinstance(output, dict):
        raise WorkflowError(f"--output {text!r} must be a JSON object")
    return output


def _answer_locally(root: str, token: str, approved: bool, cause: str | None) -> bool:
    try:
        from workflow.local.callbacks import respond_if_pending
    except ImportError:  # the local runtime is optional
        return False
    return bool(respond_if_pending(root, token, "approve" if approved else "reject", cause=cause))


def _answer(
    options: Options,
    token: str,
    approved: bool,
    output: str | None,
    cause: str | None,
    endpoint_url: str | None,
) -> int:
    from workflow.aws import send_approval
    from workflow.errors import WorkflowError

    token = token.strip()
    if not token:
        raise WorkflowError("TOKEN is empty; pass the task token from the approval mail")
    document = _parse_output(output)
    config = options.load_config()
    verb = "approved" if approved else "rejected"
    if _answer_locally(config.local.root, token, approved, cause):
        logger.info("%s the local run waiting on this token", verb)
        print("local")
        return 0
    client = commands.sfn_client(config.region, endpoint_url)
    send_approval(client, token, approved, output=document, cause=cause)
    logger.info("%s: answered the task token on Step Functions", verb)
    print("aws")
    return 0


COMMANDS = (approve, reject)
