"""The command line: ``python -m workflow [--config FILE] [--set KEY=VALUE] <command> ...``.

A click group assembled from the modules listed in `COMMAND_MODULES`; each module lists its
click commands in ``COMMANDS`` (see `workflow.commands`). Adding a command is one module and
one line here.

This is the only place where logging is configured. Exit codes: 0 success, 1 runtime failure,
2 usage or configuration error. Expected errors print ``error: ...`` lines on stderr without a
traceback; ``--debug`` shows it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

import click

from workflow.commands import Options, common_parameters
from workflow.errors import WorkflowError

# One line per command module; each module lists its command(s) in COMMANDS.
COMMAND_MODULES: tuple[str, ...] = (
    "workflow.commands.render",
    "workflow.commands.validate",
    "workflow.commands.deploy",
    "workflow.commands.start",
    "workflow.commands.approve",
    "workflow.commands.redrive",
    "workflow.commands.run",
    "workflow.commands.exec",
    "workflow.commands.endpoints",
    "workflow.commands.infra",
    "workflow.commands.notebooks",
    "workflow.commands.api",
)

PROG = "python -m workflow"

logger = logging.getLogger(__name__)


def configure_logging(debug: bool = False, quiet: bool = False) -> None:
    """Send the ``workflow`` logger to stderr; quieten the AWS SDKs.

    Importing `stepfunctions` sets the root logger to ERROR, so the level is set on the
    ``workflow`` logger itself, which does not propagate to the root.
    """
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s" if debug else "%(message)s")
    )
    package_logger = logging.getLogger("workflow")
    package_logger.handlers = [handler]
    package_logger.setLevel(level)
    package_logger.propagate = False
    for noisy in ("botocore", "boto3", "urllib3", "sagemaker", "stepfunctions", "moto"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)


def _setup(options: Options) -> None:
    configure_logging(debug=options.debug, quiet=options.quiet)


class WorkflowGroup(click.Group):
    """The group of commands, listed in the order of `COMMAND_MODULES`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the command names in the order they were added."""
        return list(self.commands)


def build_cli() -> click.Group:
    """Return the click group with every command of `COMMAND_MODULES`."""

    @click.group(
        name=PROG,
        cls=WorkflowGroup,
        help="Author, validate, deploy and run the Mask R-CNN MLOps state machine.",
        params=common_parameters(),
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.pass_context
    def group(
        ctx: click.Context, config: str | None, overrides: tuple[str, ...], debug: bool, quiet: bool
    ) -> None:
        ctx.obj = Options(config, tuple(overrides), debug, quiet, setup=_setup)

    for module_name in COMMAND_MODULES:
        for command in importlib.import_module(module_name).COMMANDS:
            group.add_command(command)
    return group


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = build_cli().main(args=args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except WorkflowError as exc:
        logger.debug("the command failed", exc_info=True)  # --debug: the traceback
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        return exc.exit_code
    except click.Abort:  # Ctrl-C
        click.echo("error: interrupted", err=True)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
