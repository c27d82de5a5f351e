"""``python -m workflow notebooks``: execute the notebooks with papermill, in local mode.

Each ``notebooks/NN_*.py`` (jupytext percent format) is converted in memory and executed in
order by papermill with the ``python3`` kernel of this environment; the executed ``.ipynb`` files
(with their PNG figures) go to ``--output`` (default ``notebooks/output/<UTC time>/``, never
overwritten). A failing cell stops the run with one line naming the notebook, the line of the
cell in the ``.py`` file and the error; the executed notebook shows the traceback.

Parameters: ``-p NAME VALUE`` (typed like papermill: ``True``/``False``/``None``, numbers, JSON
objects and lists, else a string) or ``-r NAME VALUE`` (always a string) go to every notebook
that declares ``NAME`` in its ``parameters`` cell; a name no notebook declares is an error.
``--set KEY=VALUE`` entries are merged into each notebook's ``overrides``. The command passes
``mode=local``, the store (``root``: ``local.root`` of the configuration) and ``--config`` unless
given. Local endpoints the notebooks leave running are stopped at the end (``--keep-endpoint``
keeps them; ``python -m workflow endpoints list`` shows them).

stdout: the path of each executed notebook. stderr: one progress line per notebook.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from workflow.notebook.execute import DEFAULT_TIMEOUT, plan_notebooks, run_notebooks
from workflow.notebook.sources import parse_value

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``notebooks`` command."""
    parser = subparsers.add_parser(
        "notebooks",
        help="execute the notebooks with papermill (local mode) into notebooks/output/",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="folder of the executed notebooks (default: notebooks/output/<UTC time>/)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help='a notebook parameter, typed (True, 3, 0.5, {"k": 1}, text); repeatable',
    )
    parser.add_argument(
        "-r",
        "--raw-parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter kept as a string; repeatable",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this notebook (file name or stem, e.g. 01_data); repeatable",
    )
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        help="folder of the .py notebooks (default: the checkout's notebooks/)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds one cell may run (default {DEFAULT_TIMEOUT})",
    )
    parser.add_argument(
        "--log-output", action="store_true", help="also stream the cells' output to stderr"
    )
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help="leave the local endpoints the notebooks started running",
    )
    parser.set_defaults(handler=run)


def _given_parameters(args: argparse.Namespace) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for name, value in args.parameter:
        given[name] = parse_value(value)
    for name, value in args.raw_parameter:
        given[name] = value
    return given


def _notebooks_folder(args: argparse.Namespace, cwd: Path) -> Path:
    """``--notebooks``, else the checkout's notebooks/, else ``./notebooks``."""
    from workflow.checkout import CheckoutError, notebooks_dir

    if args.notebooks:
        return Path(args.notebooks)
    try:
        folder = notebooks_dir()
    except CheckoutError:
        folder = cwd / "notebooks"
    if not folder.is_dir() and (cwd / "notebooks").is_dir():
        folder = cwd / "notebooks"
    return folder


def run(args: argparse.Namespace) -> int:
    """Execute the notebooks."""
    from workflow.commands import config_from_args, parse_overrides

    config = config_from_args(args)
    cwd = Path.cwd()
    plan = plan_notebooks(
        _notebooks_folder(args, cwd),
        only=args.only,
        given=_given_parameters(args),
        set_overrides=parse_overrides(getattr(args, "overrides", None)),
        default_root=config.local.root,
        config_file=getattr(args, "config", None),
        output=Path(args.output) if args.output else None,
        cwd=cwd,
    )
    if args.log_output:
        # papermill logs the cells' output on its own logger; show it beside ours on stderr.
        papermill_logger = logging.getLogger("papermill")
        papermill_logger.handlers = [logging.StreamHandler(sys.stderr)]
        papermill_logger.setLevel(logging.INFO)
        papermill_logger.propagate = False

    def done(path: Path) -> None:
        sys.stdout.write(f"{path}\n")
        sys.stdout.flush()

    run_notebooks(
        plan,
        timeout=args.timeout,
        log_output=args.log_output,
        keep_endpoint=args.keep_endpoint,
        progress=lambda line: print(line, file=sys.stderr),
        done=done,
    )
    return 0
