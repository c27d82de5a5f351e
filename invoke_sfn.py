#!/usr/bin/env python3
"""Start the state machine from CodeBuild (or Jenkins) and exit with the execution's outcome.

A thin caller of ``python -m workflow start``: CodeBuild's ``CODEBUILD_RESOLVED_SOURCE_VERSION``
is the commit, ``IMAGE_URI`` (or ``--image-uri``) the image the build pushed, and
``STATE_MACHINE_ARN`` (or ``--state-machine-arn``) the machine, else the one named in
``workflow.yaml``. It waits for the execution, printing each state transition, and exits 0 only
when the execution succeeded, so the build fails when the pipeline fails. It reads the history
without its data (``includeExecutionData=false``): names, errors and causes, never a state's
parameters, where a task token would be.

    python invoke_sfn.py [--image-uri URI] [--no-wait] [any other 'start' option]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["start", *sys.argv[1:]]))
