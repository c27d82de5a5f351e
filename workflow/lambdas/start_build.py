"""Start the CodeBuild project that builds and pushes the training image; return at once.

The state machine's BuildImage step invokes this function with `lambda:invoke` and a Payload like
``{"CommitId.$": "$.CommitId", "ExecutionArn.$": "$$.Execution.Id"}``. It starts one build and
returns the build's id and the URI of the image the build pushes (``<repository URI>:<tag>``; the
tag is decided here and handed to the build as ``IMAGE_TAG``). The state machine then polls the
build with ``batchGetBuilds``: the build never answers the state machine, so no task token is
ever given to it (code running in a build must not be able to send task results; see
docs/reliability.md). An event that still carries a ``TaskToken`` is refused.

The CodeBuild project is never deleted or recreated: the template owns it.

Environment:
    CODEBUILD_PROJECT: name of the CodeBuild project (set by the template).
    IMAGE_REPOSITORY_URI: the image repository's URI (set by the template), e.g.
        ``123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn``.

Event fields:
    CommitId (required), ExecutionArn (optional: the execution that waits; the build reads it
    as ``PIPELINE_EXECUTION_ARN`` and then does not start another execution), ImageTag
    (optional; default ``<commit[:7]>-<UTC yyyymmddHHMMSS>``), ProjectName (optional override
    of CODEBUILD_PROJECT).
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
REPOSITORY_ENV = "IMAGE_REPOSITORY_URI"
# Tells the build that an execution started it and polls it (so post_build starts none).
EXECUTION_VARIABLE = "PIPELINE_EXECUTION_ARN"
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
    """Start one build of the image and return its id and the URI of the image it pushes.

    Args:
        event: The state machine's Payload (see the module docstring).
        context: The Lambda context (unused).
        environ: Environment to read (default `os.environ`); tests pass their own.

    Returns:
        ``{"BuildId", "BuildArn", "ProjectName", "ImageTag", "ImageUri", "CommitId"}``.

    Raises:
        BadEventError: CommitId is missing, the event carries a TaskToken, or ImageTag is not a
            valid tag.
        LambdaConfigError: CODEBUILD_PROJECT is not set and the event names no project, or
            IMAGE_REPOSITORY_URI is not set.
    """
    env = os.environ if environ is None else environ
    commit = require_field(event, "CommitId")
    if "TaskToken" in event:
        raise BadEventError(
            "the event carries a TaskToken, which would reach the build's environment; deploy "
            "the current state machine (it polls the build with batchGetBuilds and sends no "
            "token)."
        )
    project = event.get("ProjectName") or require_env(
        env, PROJECT_ENV, "set it to the CodeBuild project's name (the template does this)"
    )
    repository = require_env(
        env, REPOSITORY_ENV, "set it to the image repository's URI (the template does this)"
    ).rstrip("/")
    tag = event.get("ImageTag") or image_tag(commit)
    if not _TAG_OK.fullmatch(tag):
        raise BadEventError(
            f"ImageTag = {tag!r} is not a valid image tag; use up to 128 characters of "
            "[A-Za-z0-9_.-] that do not start with '.' or '-'."
        )
    request: dict[str, Any] = {
        "projectName": project,
        "environmentVariablesOverride": [
            {"name": "COMMIT_ID", "value": commit, "type": "PLAINTEXT"},
            {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
        ],
    }
    execution = str(event.get("ExecutionArn") or "")
    if execution:
        request["environmentVariablesOverride"].append(
            {"name": EXECUTION_VARIABLE, "value": execution, "type": "PLAINTEXT"}
        )
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
        "ImageUri": f"{repository}:{tag}",
        "CommitId": commit,
    }
