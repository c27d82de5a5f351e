"""The command line: ``python -m workflow [--config FILE] [--set KEY=VALUE] <command> ...``.

The parser is assembled from the modules listed in `COMMAND_MODULES`; each exposes
``register(subparsers)``, which adds its sub-command and sets ``handler`` (a function taking the
parsed arguments and returning the exit code). Command modules keep heavy imports (torch,
sagemaker, stepfunctions, moto, boto3) inside their functions so that ``--help`` stays fast.

This is the only place where logging is configured. Exit codes: 0 success, 1 runtime failure,
2 usage or configuration error. Expected errors print ``error: ...`` lines on stderr without a
traceback; ``--debug`` shows it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from workflow.errors import WorkflowError

# One line per command module; each module adds its own sub-command(s).
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

logger = logging.getLogger(__name__)


def _add_common_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """Add the options every command accepts, before or after the command name."""
    # Sub-parsers use SUPPRESS so that an option given before the command is not reset.
    default = None if top_level else argparse.SUPPRESS
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="configuration file (default: $MLOPS_CONFIG, else ./workflow.yaml if present)",
    )
    group.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[] if top_level else argparse.SUPPRESS,
        help="override one configuration key, e.g. --set gate.threshold=0.4 (repeatable)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="debug logging and tracebacks",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="only warnings and errors on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command of `COMMAND_MODULES`."""
    parser = argparse.ArgumentParser(
        prog="python -m workflow",
        description="Author, validate, deploy and run the Mask R-CNN MLOps state machine.",
    )
    _add_common_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        before = set(subparsers.choices)
        importlib.import_module(module_name).register(subparsers)
        for name in set(subparsers.choices) - before:
            _add_common_options(subparsers.choices[name], top_level=False)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    configure_logging(debug=args.debug, quiet=args.quiet)
    try:
        return int(args.handler(args))
    except WorkflowError as exc:
        if args.debug:
            logger.exception("command %s failed", args.command)
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
