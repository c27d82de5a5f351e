"""Start the CodeBuild project that builds and pushes the training image; return at once.

The state machine's Build step invokes this function with `lambda:invoke.waitForTaskToken` and a
Payload like ``{"TaskToken.$": "$$.Task.Token", "CommitId.$": "$.CommitId"}``. The build gets the
token in its environment (`TASK_TOKEN`), and its buildspec answers the state machine with
`aws stepfunctions send-task-success --task-output '{"ImageUri": ...}'` (or `send-task-failure`).
Nothing polls here, and the CodeBuild project is never deleted or recreated: the template owns it.

Environment:
    CODEBUILD_PROJECT: name of the CodeBuild project (set by the template).

Event fields:
    TaskToken (required), CommitId (required), ImageTag (optional; default
    ``<commit[:7]>-<UTC yyyymmddHHMMSS>``), ProjectName (optional override of CODEBUILD_PROJECT).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from workflow.lambdas import clients
from workflow.lambdas._util import require_env, require_field
from workflow.lambdas.errors import BadEventError

logger = logging.getLogger(__name__)

PROJECT_ENV = "CODEBUILD_PROJECT"
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}")
_TAG_OK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def image_tag(commit_id: str, now: datetime | None = None) -> str:
    """Return the image tag for a commit: its first 7 characters plus a UTC timestamp.

    Args:
        commit_id: The source commit (any string; unsafe characters become ``-``).
        now: The time to stamp (default: now, UTC).

    Returns:
        A Docker/ECR-valid tag such as ``"1a2b3c4-20261121193000"``.
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")
    short = re.sub(r"[^A-Za-z0-9_.-]", "-", commit_id.strip())[:7] or "unknown"
    return f"{short}-{stamp}"


def handler(
    event: Mapping[str, Any], context: Any, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Start one build of the image and return its id; the build reports back via the token.

    Args:
        event: The state machine's Payload (see the module docstring).
        context: The Lambda context (unused).
        environ: Environment to read (default `os.environ`); tests pass their own.

    Returns:
        ``{"BuildId", "BuildArn", "ProjectName", "ImageTag", "CommitId"}``.

    Raises:
        BadEventError: TaskToken or CommitId is missing, or ImageTag is not a valid tag.
        LambdaConfigError: CODEBUILD_PROJECT is not set and the event names no project.
    """
    env = os.environ if environ is None else environ
    token = require_field(event, "TaskToken")
    commit = require_field(event, "CommitId")
    project = event.get("ProjectName") or require_env(
        env, PROJECT_ENV, "set it to the CodeBuild project's name (the template does this)"
    )
    tag = event.get("ImageTag") or image_tag(commit)
    if not _TAG_OK.fullmatch(tag):
        raise BadEventError(
            f"ImageTag = {tag!r} is not a valid image tag; use up to 128 characters of "
            "[A-Za-z0-9_.-] that do not start with '.' or '-'."
        )
    request: dict[str, Any] = {
        "projectName": project,
        "environmentVariablesOverride": [
            {"name": "TASK_TOKEN", "value": token, "type": "PLAINTEXT"},
            {"name": "COMMIT_ID", "value": commit, "type": "PLAINTEXT"},
            {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
        ],
    }
    # Only a full commit id is a sourceVersion every source type accepts; anything else (a
    # local run's label, a short id) builds the project's configured branch with COMMIT_ID set.
    if _FULL_COMMIT.fullmatch(commit):
        request["sourceVersion"] = commit
    build = clients.client("codebuild").start_build(**request)["build"]
    logger.info("started build %s of %s for commit %s", build.get("id"), project, commit)
    return {
        "BuildId": build.get("id"),
        "BuildArn": build.get("arn"),
        "ProjectName": project,
        "ImageTag": tag,
        "CommitId": commit,
    }
