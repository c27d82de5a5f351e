"""The notebooks' aws mode: deploy the SDK workflow and build the execution input of a run."""

from __future__ import annotations

import os
from typing import Any

from workflow.notebook.session import Session


def deploy(workflow: Any) -> Any:
    """Create the SDK workflow's state machine in the account, or update it in place.

    Uses :func:`workflow.aws.deploy` (the SDK's ``create()`` only logs an error when the name is
    taken) and attaches the ARN to ``workflow``, so that ``workflow.execute()`` works next.

    Returns:
        The :class:`workflow.aws.DeployResult` (``arn``, ``action``, ``diff``).
    """
    from workflow import aws

    result = aws.deploy(
        workflow.client, workflow.name, workflow.definition.to_json(pretty=True), workflow.role
    )
    workflow.state_machine_arn = result.arn
    return result


def aws_execution_input(session: Session, commit: str = "", image_uri: str = "") -> dict[str, Any]:
    """Return the execution input of a run in the account (data under ``s3.bucket``/``prefix``).

    Args:
        session: An ``aws`` session.
        commit: The commit to build (default: CodeBuild's source version or ``git rev-parse``).
        image_uri: An image in ECR to use instead of building one.
    """
    from workflow.naming import execution_input, resolve_commit

    commit = commit or resolve_commit(os.environ, cwd=session.project)
    return dict(execution_input(session.config, commit, image_uri=image_uri or None))
