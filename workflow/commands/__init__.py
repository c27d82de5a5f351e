"""The sub-commands of ``python -m workflow``, one click command per module, and what they share.

A command module defines its click command with ``@click.command(cls=WorkflowCommand)`` and lists
it in ``COMMANDS``; ``workflow.cli`` adds every module of its ``COMMAND_MODULES``. A command
receives the common options (``--config``, ``--set``, ``--debug``, ``-q``) as an `Options`
(``@pass_options``), parses its own flags and calls the layer that does the work; it holds no
product logic and keeps heavy imports (torch, sagemaker, stepfunctions, moto, boto3) inside its
function so that ``--help`` stays fast. It returns the exit code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import click

from workflow.errors import ConfigError

if TYPE_CHECKING:
    from workflow.config import WorkflowConfig

F = TypeVar("F", bound=Callable[..., Any])

COMMON_OPTIONS = ("config", "overrides", "debug", "quiet")


@dataclass(frozen=True)
class Options:
    """The common options, given before the command name, after it, or both.

    Attributes:
        config: ``--config FILE`` (None: ``$MLOPS_CONFIG``, else ``./workflow.yaml``).
        overrides: the ``--set KEY=VALUE`` items, in order (before the command, then after).
        debug: ``--debug``: debug logging and tracebacks.
        quiet: ``-q``: only warnings and errors on stderr.
        setup: what the entry point runs once the options are known (it configures logging).
    """

    config: str | None = None
    overrides: tuple[str, ...] = ()
    debug: bool = False
    quiet: bool = False
    setup: Callable[[Options], None] | None = None

    def then(self, params: Mapping[str, Any]) -> Options:
        """Return these options with those given after the command name on top."""
        return replace(
            self,
            config=params.get("config") or self.config,
            overrides=(*self.overrides, *(params.get("overrides") or ())),
            debug=self.debug or bool(params.get("debug")),
            quiet=self.quiet or bool(params.get("quiet")),
        )

    def load_config(
        self, environ: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None
    ) -> WorkflowConfig:
        """Load the configuration of ``--config`` with ``--set`` (and ``extra``) on top.

        Args:
            environ: The environment (default: ``os.environ``).
            extra: More overrides from command flags (e.g. ``{"region": "eu-west-1"}``); None
                values are skipped.
        """
        from workflow.config import load_config

        overrides = parse_overrides(self.overrides)
        for key, value in (extra or {}).items():
            if value is not None:
                overrides[key] = value
        return load_config(
            self.config, environ=os.environ if environ is None else environ, overrides=overrides
        )


def common_parameters() -> list[click.Parameter]:
    """Return ``--config``, ``--set``, ``--debug`` and ``-q`` (for the group and every command)."""
    return [
        click.Option(
            ["--config"],
            metavar="FILE",
            default=None,
            help="configuration file (default: $MLOPS_CONFIG, else ./workflow.yaml if present)",
        ),
        click.Option(
            ["--set", "overrides"],
            metavar="KEY=VALUE",
            multiple=True,
            help="override one configuration key, e.g. --set gate.threshold=0.4 (repeatable)",
        ),
        click.Option(["--debug"], is_flag=True, help="debug logging and tracebacks"),
        click.Option(["-q", "--quiet"], is_flag=True, help="only warnings and errors on stderr"),
    ]


class WorkflowCommand(click.Command):
    """A sub-command: takes the common options too and hands them on as one `Options`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the command with the common options after its own."""
        super().__init__(*args, **kwargs)
        self.params.extend(common_parameters())

    def invoke(self, ctx: click.Context) -> Any:
        """Merge the common options into ``ctx.obj``, run the entry point's setup, then run."""
        given = {name: ctx.params.pop(name, None) for name in COMMON_OPTIONS}
        parent = ctx.find_object(Options) or Options()
        options = parent.then(given)
        ctx.obj = options
        if options.setup is not None:
            options.setup(options)
        return super().invoke(ctx)


pass_options = click.make_pass_decorator(Options, ensure=True)


def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
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


def endpoint_url_option(command: F) -> F:
    """Add ``--endpoint-url`` (Step Functions only; ``AWS_ENDPOINT_URL_SFN`` works too)."""
    return click.option(
        "--endpoint-url",
        metavar="URL",
        help="Step Functions endpoint, e.g. a local emulator at http://127.0.0.1:5000 "
        "(default: AWS_ENDPOINT_URL_SFN, else AWS)",
    )(command)


APPROVE_CHOICE = click.Choice(["auto", "manual"])


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


__all__ = [
    "APPROVE_CHOICE",
    "Options",
    "WorkflowCommand",
    "common_parameters",
    "endpoint_url_option",
    "parse_overrides",
    "pass_options",
    "sfn_client",
]
