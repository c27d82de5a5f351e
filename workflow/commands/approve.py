"""``python -m workflow approve TOKEN`` / ``reject TOKEN``: answer the approval task token.

A local run waiting on the token gets the answer through its callback folder; otherwise the
answer goes to Step Functions (SendTaskSuccess, or SendTaskFailure with the error ``Rejected``,
which the state machine catches, notifies and fails with).
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from workflow.commands import add_endpoint_url

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``approve`` and ``reject`` commands."""
    approve = subparsers.add_parser(
        "approve",
        help="approve a deployment waiting on its task token (local run or AWS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    approve.add_argument("token", metavar="TOKEN", help="the task token from the approval mail")
    approve.add_argument(
        "--output", metavar="JSON", help='task output (default: {"approved": true})'
    )
    add_endpoint_url(approve)
    approve.set_defaults(handler=run, approved=True)

    reject = subparsers.add_parser(
        "reject",
        help="reject a deployment waiting on its task token: the execution fails 'Rejected'",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reject.add_argument("token", metavar="TOKEN", help="the task token from the approval mail")
    reject.add_argument("--cause", help="why (shown in the failure notification)")
    add_endpoint_url(reject)
    reject.set_defaults(handler=run, approved=False, output=None)


def _answer_locally(root: str, token: str, approved: bool, cause: str | None) -> bool:
    try:
        from workflow.local.callbacks import respond_if_pending
    except ImportError:  # the local runtime is optional
        return False
    return bool(respond_if_pending(root, token, "approve" if approved else "reject", cause=cause))


def run(args: argparse.Namespace) -> int:
    """Answer the token."""
    from workflow.aws import send_approval
    from workflow.commands import config_from_args, sfn_client
    from workflow.errors import WorkflowError

    token = args.token.strip()
    if not token:
        raise WorkflowError("TOKEN is empty; pass the task token from the approval mail")
    output = None
    if args.output is not None:
        try:
            output = json.loads(args.output)
        except json.JSONDecodeError as exc:
            raise WorkflowError(
                f"--output {args.output!r} is not JSON ({exc.msg}); e.g. --output '{{\"ok\": 1}}'"
            ) from exc
        if not isinstance(output, dict):
            raise WorkflowError(f"--output {args.output!r} must be a JSON object")
    config = config_from_args(args)
    cause = getattr(args, "cause", None)
    verb = "approved" if args.approved else "rejected"
    if _answer_locally(config.local.root, token, args.approved, cause):
        logger.info("%s the local run waiting on this token", verb)
        print("local")
        return 0
    client = sfn_client(config.region, args.endpoint_url)
    send_approval(client, token, args.approved, output=output, cause=cause)
    logger.info("%s: answered the task token on Step Functions", verb)
    print("aws")
    return 0
