"""``python -m workflow run --local``: run the state machine end to end on this machine.

Runs the exact ASL document ``render`` prints on the local engine: a synthetic data set, a real
(tiny) training job, a batch transform, the metrics Lambda, the quality gate, the approval, a
real local endpoint, and finally a prediction of a held-out image drawn into a PNG. Progress
goes to stderr; the summary JSON goes to stdout. Exit code 0 when the execution succeeded, 1
when it failed (the failing state, error and cause are printed; ``--redrive`` resumes it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from workflow.errors import ConfigError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="run the whole state machine locally (--local): data, training, endpoint, prediction",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="run on this machine with the local runtime (required; AWS runs use 'start')",
    )
    parser.add_argument(
        "--approve",
        choices=("auto", "manual"),
        default=None,
        help="auto: approve when the quality gate passed (default from local.approve); manual: "
        "wait for 'python -m workflow approve|reject TOKEN' from another terminal",
    )
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help="leave the local endpoint running at the end (stop it with 'endpoints stop')",
    )
    parser.add_argument(
        "--redrive",
        action="store_true",
        help="resume the last failed local run from the state that failed",
    )
    parser.add_argument("--commit", help="commit to build and name the run after (default: HEAD)")
    parser.add_argument(
        "--image-uri", help="use this image and skip the build (e.g. local/mask-r-cnn:TAG)"
    )
    parser.add_argument("--verbose-logs", action="store_true", help="print every training log line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the state machine locally and return the exit code."""
    from workflow.commands import config_from_args
    from workflow.local.pipeline import run_pipeline
    from workflow.local.report import Progress

    if not args.local:
        raise ConfigError(
            ["'run' only runs locally: add --local (for AWS use 'deploy' then 'start')"],
            source="command line",
        )
    if args.redrive and (args.commit or args.image_uri):
        raise ConfigError(
            ["--redrive resumes the recorded run; leave out --commit and --image-uri"],
            source="command line",
        )
    config = config_from_args(args)
    result = run_pipeline(
        config,
        approve=args.approve,
        keep_endpoint=args.keep_endpoint,
        redrive=args.redrive,
        commit=args.commit,
        image_uri=args.image_uri,
        progress=Progress(verbose=args.verbose_logs),
    )
    sys.stdout.write(json.dumps(result.summary, indent=2, default=str) + "\n")
    return result.exit_code
