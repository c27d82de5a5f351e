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

import logging
import sys
from pathlib import Path

import click

from workflow.commands import Options, WorkflowCommand, parse_overrides, pass_options
from workflow.notebook.execute import DEFAULT_TIMEOUT

logger = logging.getLogger(__name__)


@click.command(
    "notebooks",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="execute the notebooks with papermill (local mode) into notebooks/output/",
)
@click.option(
    "--output",
    metavar="DIR",
    help="folder of the executed notebooks (default: notebooks/output/<UTC time>/)",
)
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help='a notebook parameter, typed (True, 3, 0.5, {"k": 1}, text); repeatable',
)
@click.option(
    "-r",
    "--raw-parameter",
    "raw_parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="a notebook parameter kept as a string; repeatable",
)
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="run only this notebook (file name or stem, e.g. 01_data); repeatable",
)
@click.option(
    "--notebooks",
    "folder",
    metavar="DIR",
    help="folder of the .py notebooks (default: the checkout's notebooks/)",
)
@click.option(
    "--timeout",
    type=int,
    default=DEFAULT_TIMEOUT,
    metavar="SECONDS",
    help=f"seconds one cell may run (default {DEFAULT_TIMEOUT})",
)
@click.option("--log-output", is_flag=True, help="also stream the cells' output to stderr")
@click.option(
    "--keep-endpoint",
    is_flag=True,
    help="leave the local endpoints the notebooks started running",
)
@pass_options
def notebooks(
    options: Options,
    output: str | None,
    parameters: tuple[tuple[str, str], ...],
    raw_parameters: tuple[tuple[str, str], ...],
    only: tuple[str, ...],
    folder: str | None,
    timeout: int,
    log_output: bool,
    keep_endpoint: bool,
) -> int:
    """Execute the notebooks."""
    from workflow.notebook.execute import notebooks_folder, plan_notebooks, run_notebooks
    from workflow.notebook.sources import parse_value

    given = {name: parse_value(value) for name, value in parameters}
    given.update(dict(raw_parameters))
    config = options.load_config()
    cwd = Path.cwd()
    plan = plan_notebooks(
        notebooks_folder(folder, cwd),
        only=list(only),
        given=given,
        set_overrides=parse_overrides(options.overrides),
        default_root=config.local.root,
        config_file=options.config,
        output=Path(output) if output else None,
        cwd=cwd,
    )
    if log_output:
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
        timeout=timeout,
        log_output=log_output,
        keep_endpoint=keep_endpoint,
        progress=lambda line: print(line, file=sys.stderr),
        done=done,
    )
    return 0


COMMANDS = (notebooks,)
