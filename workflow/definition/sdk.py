"""The Step Functions Data Science SDK, imported offline and quietly, and its small gaps filled.

The SageMaker SDK objects the `stepfunctions` steps need get a session whose boto session holds
placeholder credentials and refuses to send any request, so rendering works with no AWS account
and no network.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workflow.config import WorkflowConfig
from workflow.errors import DefinitionError


@dataclass(frozen=True)
class Sdk:
    """The SDK classes, imported once (the import costs seconds)."""

    steps: Any
    inputs: Any
    workflow_cls: Any
    estimator_cls: Any
    model_cls: Any
    transformer_cls: Any
    session_cls: Any
    boto3: Any
    lambda_step: Any
    sns_step: Any


_SDK: Sdk | None = None


@contextlib.contextmanager
def quiet_sdk_import() -> Iterator[None]:
    """Import sagemaker/stepfunctions offline and silently.

    Importing `sagemaker` builds a default JumpStart session, which probes the EC2 instance
    metadata service when no credentials are configured, prints a deprecation notice and logs
    config-file lookups to *stdout*. Here the probe is disabled (only while importing) and those
    messages are silenced, so `render` prints nothing but the ASL document.
    """
    saved = {
        key: os.environ.get(key)
        for key in ("AWS_EC2_METADATA_DISABLED", "SAGEMAKER_SUPPRESS_V2_WARNING")
    }
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    quiet = [logging.getLogger(n) for n in ("sagemaker.config", "sagemaker.jumpstart", "sagemaker")]
    levels = [lg.level for lg in quiet]
    root_level = logging.getLogger().level
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
        # stepfunctions sets the root logger to ERROR at import; leave the caller's level alone.
        logging.getLogger().setLevel(root_level)


def load_sdk() -> Sdk:
    global _SDK
    if _SDK is None:
        with quiet_sdk_import():
            import boto3
            import sagemaker.session
            from sagemaker.estimator import Estimator
            from sagemaker.model import Model
            from sagemaker.transformer import Transformer
            from stepfunctions import inputs, steps
            from stepfunctions.steps import LambdaStep
            from stepfunctions.steps.service import SnsPublishStep
            from stepfunctions.workflow import Workflow
        _SDK = Sdk(
            steps=steps,
            inputs=inputs,
            workflow_cls=Workflow,
            estimator_cls=Estimator,
            model_cls=Model,
            transformer_cls=Transformer,
            session_cls=sagemaker.session.Session,
            boto3=boto3,
            lambda_step=LambdaStep,
            sns_step=SnsPublishStep,
        )
    return _SDK


def aws_partition(region: str) -> str:
    """Return the AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


@contextlib.contextmanager
def partition_of(region: str) -> Iterator[None]:
    """Make the SDK's integration ARNs use the configured region's partition.

    SDK 2.3.0 derives the partition from the *environment's* default region and re-reads
    botocore's endpoint data (about 1 MB of JSON) for every step; the configured region is the
    right source, and a plain function is instant.
    """
    from stepfunctions.steps import integration_resources

    original = integration_resources.get_aws_partition
    partition = aws_partition(region)
    integration_resources.get_aws_partition = lambda: partition
    try:
        yield
    finally:
        integration_resources.get_aws_partition = original


def _refuse_request(**_: Any) -> None:
    raise DefinitionError(
        "the state machine was built offline and cannot call AWS; pass a real boto3 client "
        "(build_workflow(config, client=boto3.client('stepfunctions'))) or use "
        "'python -m workflow deploy'"
    )


_OFFLINE_SESSIONS: dict[tuple[str, str], Any] = {}


def _offline_boto_session(sdk: Sdk, region: str) -> Any:
    """A boto3 session that never resolves credentials and refuses to send requests."""
    session = sdk.boto3.Session(
        aws_access_key_id="offline-render",
        aws_secret_access_key="offline-render",  # pragma: allowlist secret
        region_name=region,
    )
    session.events.register("before-send", _refuse_request)
    return session


def offline_sagemaker_session(sdk: Sdk, config: WorkflowConfig) -> Any:
    """A SageMaker session for the SDK objects; cached, since creating one loads models."""
    key = (config.region, config.s3.bucket)
    if key not in _OFFLINE_SESSIONS:
        with quiet_sdk_import():
            session = sdk.session_cls(
                boto_session=_offline_boto_session(sdk, config.region),
                default_bucket=config.s3.bucket,
                # A given config skips reading the user's and admin's SDK config files, whose
                # defaults (tags, VPC, KMS keys) would otherwise leak into the document.
                sagemaker_config={"SchemaVersion": "1.0"},
            )
        # Empty now: the SDK re-validates a non-empty config on every lookup (slow).
        session.sagemaker_config = {}
        _OFFLINE_SESSIONS[key] = session
    return _OFFLINE_SESSIONS[key]


def bind(state: Any, keys: tuple[str, ...], path: str) -> None:
    """Make ``Parameters.<keys>`` read ``path`` from the state data (``"<key>.$": path``).

    The SDK only accepts state-data placeholders that come from the previous step's output, but
    the image and the training artifacts are kept at fixed paths of the state data by earlier
    states, so the SDK's static value is replaced here by the path.
    """
    target = state.fields["parameters"]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target.pop(keys[-1], None)
    target[f"{keys[-1]}.$"] = path


def select_result(state: Any, selector: dict[str, str]) -> None:
    """Give a Task a ``ResultSelector`` (ASL, 2020), which SDK 2.3.0 does not know.

    The field is set after the SDK checked the constructor's fields; it renders as
    ``ResultSelector``.
    """
    state.fields["result_selector"] = selector


_FAIL_CLS: Any = None


def fail_with_path_class() -> Any:
    """A `Fail` state that also accepts ``ErrorPath`` and ``CausePath`` (ASL, 2023).

    SDK 2.3.0 predates these fields; the subclass only widens the allowed fields, and the SDK
    renders ``error_path`` as ``ErrorPath``.
    """
    global _FAIL_CLS
    if _FAIL_CLS is None:
        steps = load_sdk().steps

        class _ExtraField(enum.Enum):
            ERROR_PATH = "error_path"
            CAUSE_PATH = "cause_path"

        class FailWithPath(steps.Fail):  # type: ignore[misc,name-defined]
            def allowed_fields(self) -> list[Any]:
                return [*super().allowed_fields(), _ExtraField.ERROR_PATH, _ExtraField.CAUSE_PATH]

        _FAIL_CLS = FailWithPath
    return _FAIL_CLS
