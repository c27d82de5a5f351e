"""``python -m workflow run --local``: run the state machine end to end on this machine.

Runs the exact ASL document ``render`` prints on the local engine: a synthetic data set, a real
(tiny) training job, a batch transform, the metrics Lambda, the quality gate, the approval, a
real local endpoint, and finally a prediction of a held-out image drawn into a PNG. Progress
goes to stderr; the summary JSON goes to stdout. Exit code 0 when the execution succeeded, 1
when it failed (the failing state, error and cause are printed; ``--redrive`` resumes it).
"""

from __future__ import annotations

import json
import logging
import sys

import click

from workflow.commands import APPROVE_CHOICE, Options, WorkflowCommand, pass_options
from workflow.errors import ConfigError

logger = logging.getLogger(__name__)


@click.command(
    "run",
    cls=WorkflowCommand,
    help=__doc__,
    short_help="run the whole state machine locally (--local): data, training, endpoint, prediction",
)
@click.option(
    "--local",
    is_flag=True,
    help="run on this machine with the local runtime (required; AWS runs use 'start')",
)
@click.option(
    "--approve",
    type=APPROVE_CHOICE,
    default=None,
    help="auto: approve when the quality gate passed (default from local.approve); manual: "
    "wait for 'python -m workflow approve|reject TOKEN' from another terminal",
)
@click.option(
    "--keep-endpoint",
    is_flag=True,
    help="leave the local endpoint running at the end (stop it with 'endpoints stop')",
)
@click.option(
    "--redrive", is_flag=True, help="resume the last failed local run from the state that failed"
)
@click.option("--commit", help="commit to build and name the run after (default: HEAD)")
@click.option("--image-uri", help="use this image and skip the build (e.g. local/mask-r-cnn:TAG)")
@click.option("--verbose-logs", is_flag=True, help="print every training log line")
@pass_options
def run(
    options: Options,
    local: bool,
    approve: str | None,
    keep_endpoint: bool,
    redrive: bool,
    commit: str | None,
    image_uri: str | None,
    verbose_logs: bool,
) -> int:
    """Run the state machine locally and return the exit code."""
    from workflow.local.pipeline import run_pipeline
    from workflow.local.report import Progress

    if not local:
        raise ConfigError(
            ["'run' only runs locally: add --local (for AWS use 'deploy' then 'start')"],
            source="command line",
        )
    if redrive and (commit or image_uri):
        raise ConfigError(
            ["--redrive resumes the recorded run; leave out --commit and --image-uri"],
            source="command line",
        )
    result = run_pipeline(
        options.load_config(),
        approve=approve,
        keep_endpoint=keep_endpoint,
        redrive=redrive,
        commit=commit,
        image_uri=image_uri,
        progress=Progress(verbose=verbose_logs),
    )
    sys.stdout.write(json.dumps(result.summary, indent=2, default=str) + "\n")
    return result.exit_code


COMMANDS = (run,)
