"""``python -m workflow render``: print the ASL document; ``--graph FILE`` draws it.

The drawing itself lives in `workflow.graph` (shared with the notebooks).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from workflow.commands import Options, WorkflowCommand, pass_options
from workflow.errors import WorkflowError

logger = logging.getLogger(__name__)


@click.command(
    "render",
    cls=WorkflowCommand,
    short_help="print the state machine's ASL JSON on stdout (the document that is deployed)",
)
@click.option(
    "--graph",
    metavar="FILE",
    help="also draw the graph to FILE (.png or .svg), offline; the ASL is then not printed",
)
@click.option("--force", is_flag=True, help="overwrite FILE of --graph if it exists")
@pass_options
def render(options: Options, graph: str | None, force: bool) -> int:
    """Print the Amazon States Language document built from the configuration.

    It is the exact string that 'deploy' sends to AWS and that the local runtime executes.
    """
    from workflow.definition import render_definition, render_json
    from workflow.graph import draw_graph

    config = options.load_config()
    if graph:
        path = Path(graph)
        if path.exists() and not force:
            raise WorkflowError(
                f"{path} already exists; choose another file or pass --force to overwrite it"
            )
        draw_graph(render_definition(config), path)
        logger.info("wrote %s", path)
        print(path)
        return 0
    sys.stdout.write(render_json(config) + "\n")
    return 0


COMMANDS = (render,)
