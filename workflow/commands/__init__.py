"""The sub-commands of ``python -m workflow``, one module each, plus helpers they share.

A command module exposes ``register(subparsers)``: it adds its parser and sets
``handler=<function(args) -> int>``. Keep heavy imports inside the handler.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflow.errors import ConfigError

if TYPE_CHECKING:
    from workflow.config import WorkflowConfig


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["gate.threshold=0.4", ...]`` into ``{"gate.threshold": "0.4", ...}``.

    Raises:
        ConfigError: When an item has no ``=``.
    """
    overrides: dict[str, Any] = {}
    problems = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r} is not KEY=VALUE; write e.g. --set gate.threshold=0.4")
            continue
        overrides[key.strip()] = value
    if problems:
        raise ConfigError(problems, source="command line")
    return overrides


def config_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> WorkflowConfig:
    """Load the configuration named by ``--config`` with ``--set`` (and ``extra``) on top.

    Args:
        args: The parsed arguments (``config``, ``overrides``).
        environ: The environment (default: ``os.environ``).
        extra: More overrides from command flags (e.g. ``{"region": "eu-west-1"}``); None values
            are skipped.
    """
    from workflow.config import load_config

    overrides = parse_overrides(getattr(args, "overrides", None))
    for key, value in (extra or {}).items():
        if value is not None:
            overrides[key] = value
    return load_config(
        getattr(args, "config", None),
        environ=os.environ if environ is None else environ,
        overrides=overrides,
    )


def add_endpoint_url(parser: argparse.ArgumentParser) -> None:
    """Add ``--endpoint-url`` (Step Functions only; ``AWS_ENDPOINT_URL_SFN`` works too)."""
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="Step Functions endpoint, e.g. a local emulator at http://127.0.0.1:5000 "
        "(default: AWS_ENDPOINT_URL_SFN, else AWS)",
    )


def sfn_client(region: str, endpoint_url: str | None = None) -> Any:
    """Return a boto3 Step Functions client for ``region`` (and ``endpoint_url`` if given).

    Without ``endpoint_url`` botocore honours ``AWS_ENDPOINT_URL_SFN`` itself, so only Step
    Functions is redirected to an emulator while every other service stays on AWS.
    """
    import boto3

    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("stepfunctions", **kwargs)


__all__ = ["add_endpoint_url", "config_from_args", "parse_overrides", "sfn_client"]
