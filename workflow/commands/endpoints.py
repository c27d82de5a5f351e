"""``python -m workflow endpoints list|stop``: manage the local endpoints still running.

Local endpoints are ``serve`` processes started by ``run --local`` (kept with
``--keep-endpoint``) or ``exec``; they are recorded in the local store, so this command works
from any terminal. ``list`` prints one JSON object per endpoint on stdout; ``stop NAME`` or
``stop --all`` stops the processes and removes the records.
"""

from __future__ import annotations

import json
import sys

import click

from workflow.commands import Options, WorkflowCommand, pass_options
from workflow.errors import ConfigError


@click.command(
    "endpoints",
    cls=WorkflowCommand,
    help=f"{__doc__}\nACTION: 'list' (the default) or 'stop'; NAME: the endpoint to stop.",
    short_help="list or stop the local endpoints (serve processes) still running",
)
@click.argument("action", metavar="[ACTION]", type=click.Choice(["list", "stop"]), required=False)
@click.argument("name", metavar="[NAME]", required=False)
@click.option("--all", "stop_all", is_flag=True, help="stop every local endpoint ('stop' only)")
@pass_options
def endpoints(options: Options, action: str | None, name: str | None, stop_all: bool) -> int:
    """List or stop local endpoints."""
    from workflow.local.endpoints import list_endpoints, stop_endpoints

    root = options.load_config().local.root
    if action in (None, "list"):
        if name or stop_all:
            raise click.UsageError("'endpoints list' takes no NAME and no --all")
        for row in list_endpoints(root):
            sys.stdout.write(json.dumps(row) + "\n")
        return 0
    if stop_all == bool(name):
        raise ConfigError(
            ["'endpoints stop' needs an endpoint NAME or --all (not both)"], source="command line"
        )
    for stopped in stop_endpoints(root, None if stop_all else [name or ""]):
        print(f"stopped {stopped}", file=sys.stderr)
    return 0


COMMANDS = (endpoints,)
