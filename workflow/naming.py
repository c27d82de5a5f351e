"""Resource names and the execution input of one run of the state machine.

Every run gets fresh SageMaker names derived from the commit ID, the UTC time and a random suffix,
e.g. ``mask-r-cnn-mlops-abc1234-20261121-193000-1a2b``, so no run overwrites another's training
job, model, endpoint configuration or transform job. Names follow SageMaker's rule
(`workflow.contracts.is_valid_name`).

`execution_input` returns the `workflow.contracts.ExecutionInput` every runtime passes to the
state machine (docs/architecture.md, "Execution input").
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from workflow.config import WorkflowConfig
from workflow.contracts import (
    GATE_THRESHOLD_KEY,
    MAX_NAME_LENGTH,
    RESOURCE_SUFFIXES,
    ExecutionInput,
    is_valid_name,
    short_commit,
)
from workflow.errors import NamingError

SUFFIX_HEX_DIGITS = 4
ENV_CODEBUILD_COMMIT = "CODEBUILD_RESOLVED_SOURCE_VERSION"
_TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def job_name(
    prefix: str,
    commit_id: str,
    now: dt.datetime | None = None,
    suffix: str | None = None,
) -> str:
    """Return the base name of a run: ``<prefix>-<commit7>-<YYYYMMDD-HHMMSS>-<suffix>``.

    The prefix is shortened so that the base name plus the longest resource suffix stays within
    63 characters.

    Args:
        prefix: Usually the state machine name (`WorkflowConfig.name`).
        commit_id: The git commit; its first 7 characters are used.
        now: The time of the run (UTC; naive datetimes are taken as UTC). Default: now.
        suffix: The unique part; default 4 random hex digits.

    Returns:
        The base name, also used as the execution name and the training job name.

    Raises:
        NamingError: When the commit ID or the prefix cannot give a valid name.
    """
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    unique = suffix if suffix is not None else secrets.token_hex(SUFFIX_HEX_DIGITS // 2)
    tail = f"-{short_commit(commit_id)}-{moment.strftime(_TIMESTAMP_FORMAT)}-{unique}"
    longest = max(len(s) for s in RESOURCE_SUFFIXES.values())
    room = MAX_NAME_LENGTH - longest - len(tail)
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", prefix)[:room].strip("-")
    if not cleaned:
        raise NamingError(
            f"name prefix {prefix!r} gives no valid SageMaker name; use letters, digits and '-' "
            "(set 'name' in workflow.yaml)"
        )
    name = cleaned + tail
    if not is_valid_name(name + longest * "x"):
        raise NamingError(
            f"derived name {name!r} is not a valid SageMaker name (≤ {MAX_NAME_LENGTH} of "
            "[a-zA-Z0-9-]); shorten 'name' in workflow.yaml"
        )
    return name


def resource_names(base: str) -> dict[str, str]:
    """Return ``{TrainingJobName, ModelName, EndpointConfigName, TransformJobName,
    DeployModelName}`` for a run."""
    names = {key: base + suffix for key, suffix in RESOURCE_SUFFIXES.items()}
    for key, name in names.items():
        if not is_valid_name(name):
            raise NamingError(
                f"{key} {name!r} is not a valid SageMaker name (≤ {MAX_NAME_LENGTH} of "
                "[a-zA-Z0-9-]); use naming.job_name() to build the base name"
            )
    return names


def execution_input(
    config: WorkflowConfig,
    commit_id: str,
    image_uri: str | None = None,
    now: dt.datetime | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    poll_seconds: int | None = None,
    gate_threshold: float | None = None,
) -> ExecutionInput:
    """Return the execution input of one run (the contract in docs/architecture.md).

    Args:
        config: The configuration.
        commit_id: The git commit that is built, trained and deployed.
        image_uri: The BYOC image; None leaves ``ImageUri`` out, so the state machine builds it.
        now: The time of the run (default: now, UTC).
        hyperparameters: Merged over ``config.training.hyperparameters`` (e.g. the local ones).
        poll_seconds: Seconds between DescribeEndpoint polls (default
            ``config.endpoint.poll_seconds``).
        gate_threshold: The quality gate's threshold for this run, a number in [0, 1] (default
            ``config.gate.threshold``; local runs pass ``config.local.gate_threshold``).

    Returns:
        A JSON-serialisable dict: CommitId, ImageUri (when given), JobName, the four resource
        names, EndpointName, EndpointPollSeconds, GateThreshold, HyperParameters and the S3 URIs
        TrainingData, ValidationData, TestData, TestImages (``<TestData>images/``), OutputPath,
        CheckpointPath and TransformOutput.

    Raises:
        NamingError: When a name cannot be derived or a value is invalid.
    """
    base = job_name(config.name, commit_id, now)
    merged = {**config.training.hyperparameters, **(hyperparameters or {})}
    for key, value in merged.items():
        if not isinstance(value, str):
            raise NamingError(
                f"hyperparameter {key} = {value!r} is not a string; SageMaker passes "
                "hyperparameters as strings, so quote it"
            )
    poll = config.endpoint.poll_seconds if poll_seconds is None else poll_seconds
    if isinstance(poll, bool) or not isinstance(poll, int) or poll < 0:
        raise NamingError(f"poll seconds {poll!r} must be a non-negative integer (e.g. 30)")
    threshold = check_gate_threshold(
        config.gate.threshold if gate_threshold is None else gate_threshold
    )
    if image_uri is not None and not image_uri.strip():
        raise NamingError(
            "image URI is empty; pass a full URI (e.g. ACCOUNT.dkr.ecr...:TAG) or omit it"
        )
    s3 = config.s3
    data: dict[str, Any] = {"CommitId": commit_id}
    if image_uri is not None:
        data["ImageUri"] = image_uri
    data["JobName"] = base
    data.update(resource_names(base))
    data.update(
        {
            "EndpointName": config.endpoint.name,
            "EndpointPollSeconds": poll,
            # QualityGate compares the metric with this value (NumericGreaterThanEqualsPath).
            GATE_THRESHOLD_KEY: threshold,
            "HyperParameters": merged,
            "TrainingData": s3.uri("data", "train"),
            "ValidationData": s3.uri("data", "validation"),
            "TestData": s3.uri("data", "test"),
            # The batch transform reads only the images (docs/architecture.md, test data layout).
            "TestImages": s3.uri("data", "test", "images"),
            "OutputPath": s3.uri("models"),
            "CheckpointPath": s3.uri("checkpoints", base),
            "TransformOutput": s3.uri("transform", base),
        }
    )
    return cast(ExecutionInput, data)


def check_gate_threshold(value: Any) -> float:
    """Return ``value`` as a float when it is a number in [0, 1] (a gate threshold), else raise.

    Raises:
        NamingError: When the value is not a finite number from 0 to 1.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise NamingError(
            f"gate threshold {value!r} must be a number from 0 to 1 (e.g. 0.5); set "
            "gate.threshold (AWS runs) or local.gate_threshold (local runs)"
        )
    return float(value)


def resolve_commit(environ: Mapping[str, str], cwd: str | Path | None = None) -> str:
    """Return the commit being built: CodeBuild's resolved source version, else ``git rev-parse``.

    Args:
        environ: The environment (``CODEBUILD_RESOLVED_SOURCE_VERSION`` wins when set).
        cwd: The directory of the git checkout (default: the current directory).

    Returns:
        The full commit SHA.

    Raises:
        NamingError: When neither source gives a commit.
    """
    from_codebuild = environ.get(ENV_CODEBUILD_COMMIT, "").strip()
    if from_codebuild:
        return from_codebuild
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NamingError(
            f"cannot run 'git rev-parse HEAD' in {str(cwd or '.')!r} ({exc}); set "
            f"{ENV_CODEBUILD_COMMIT} or pass --commit"
        ) from exc
    commit = result.stdout.strip()
    if result.returncode != 0 or not commit:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        raise NamingError(
            f"cannot find the commit: 'git rev-parse HEAD' in {str(cwd or '.')!r} failed "
            f"({reason}); run inside a git checkout, set {ENV_CODEBUILD_COMMIT} or pass --commit"
        )
    return commit


__all__ = [
    "ENV_CODEBUILD_COMMIT",
    "check_gate_threshold",
    "execution_input",
    "job_name",
    "resolve_commit",
    "resource_names",
]
