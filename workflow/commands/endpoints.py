"""``python -m workflow endpoints list|stop``: manage the local endpoints still running.

Local endpoints are ``serve`` processes started by ``run --local`` (kept with
``--keep-endpoint``) or ``exec``; they are recorded in the local store, so this command works
from any terminal. ``list`` prints one JSON object per endpoint on stdout; ``stop NAME`` or
``stop --all`` stops the processes and removes the records.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflow.errors import ConfigError, WorkflowError


def register(subparsers: Any) -> None:
    """Add the ``endpoints`` command."""
    parser = subparsers.add_parser(
        "endpoints",
        help="list or stop the local endpoints (serve processes) still running",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="print the local endpoints as JSON lines")
    stop = actions.add_parser("stop", help="stop local endpoints")
    stop.add_argument("name", nargs="?", help="the endpoint name")
    stop.add_argument("--all", action="store_true", help="stop every local endpoint")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """List or stop local endpoints."""
    from workflow.commands import config_from_args
    from workflow.local.sagemaker import LocalSageMaker
    from workflow.local.sagemaker_endpoints import endpoint_records, stop_endpoint
    from workflow.local.store import LocalStore

    config = config_from_args(args)
    store = LocalStore(config.local.root)

    def no_images(uri: str) -> Any:
        raise WorkflowError(f"image {uri} is not needed to list or stop endpoints")

    sm = LocalSageMaker(store=store, resolve_image=no_images, log_sink=None)
    if args.action in (None, "list"):
        for record in endpoint_records(sm):
            shown = {
                "name": record.get("EndpointName"),
                "status": record.get("EndpointStatus"),
                "running": record.get("Running"),
                "url": record.get("Url"),
                "pid": record.get("Pid"),
                "config": record.get("EndpointConfigName"),
                "model_dir": record.get("ModelDir"),
                "log": record.get("LogPath"),
            }
            sys.stdout.write(json.dumps(shown) + "\n")
        return 0
    if args.all == bool(args.name):
        raise ConfigError(
            ["'endpoints stop' needs an endpoint NAME or --all (not both)"], source="command line"
        )
    names = [r["EndpointName"] for r in endpoint_records(sm)] if args.all else [args.name]
    for name in names:
        if not stop_endpoint(sm, name):
            known = [r["EndpointName"] for r in endpoint_records(sm)]
            raise WorkflowError(
                f"there is no local endpoint named {name!r} (local endpoints: {known or 'none'}); "
                "see 'python -m workflow endpoints list'"
            )
        print(f"stopped {name}", file=sys.stderr)
    return 0
