"""``python -m workflow render``: print the ASL document; ``--graph FILE`` draws it.

The drawing itself lives in `workflow.graph` (shared with the notebooks).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from workflow.errors import WorkflowError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``render`` command."""
    parser = subparsers.add_parser(
        "render",
        help="print the state machine's ASL JSON on stdout (the document that is deployed)",
        description=(
            "Print the Amazon States Language document built from the configuration: the exact "
            "string that 'deploy' sends to AWS and that the local runtime executes."
        ),
    )
    parser.add_argument(
        "--graph",
        metavar="FILE",
        help="also draw the graph to FILE (.png or .svg), offline; the ASL is then not printed",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite FILE of --graph if it exists"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render the definition (and the graph)."""
    from workflow.commands import config_from_args
    from workflow.definition import render_definition, render_json
    from workflow.graph import draw_graph

    config = config_from_args(args)
    if args.graph:
        path = Path(args.graph)
        if path.exists() and not args.force:
            raise WorkflowError(
                f"{path} already exists; choose another file or pass --force to overwrite it"
            )
        draw_graph(render_definition(config), path)
        logger.info("wrote %s", path)
        print(path)
        return 0
    sys.stdout.write(render_json(config) + "\n")
    return 0
