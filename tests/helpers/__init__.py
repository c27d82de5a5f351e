"""What the test folders share, defined once: ``helpers`` and its modules.

Tests import it as ``helpers`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``,
pytest's default ``prepend`` import mode). Here: free ports, child environments, tiny
hyperparameters, the synthetic data set. Its modules hold what a unit folder and its integration
twin both build on: ``buildspec`` (the buildspec emulator's reading), ``infra`` (rendered
templates), ``echo_server``, ``notebook_session``, ``container_source`` and ``local_runs`` (the
end-to-end runs of the local pipeline); a conftest imports them, e.g.
``from helpers.infra import config  # noqa: F401``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# What a child program must not inherit from the test run: our configuration, AWS credentials
# and the SageMaker variables that would point it at another tree, job or port.
CHILD_CLEARED = ("MLOPS_", "AWS_", "SM_", "SAGEMAKER_", "TRAINING_JOB_", "MASTER_", "MODEL_SERVER_")

# The smallest network the container builds: a ResNet-18 FPN 8 channels wide with one-layer
# heads. A training step of 2 images of at most 96 px takes about 0.1 s on 2 cores, against
# about 1 s for the MobileNet FPN with torchvision's 256-channel heads (the architecture the
# tests exercise is the same code; unit tests build every backbone).
TINY_ARCHITECTURE = {
    "backbone": "resnet18_fpn",
    "backbone_width": "8",
    "fpn_channels": "16",
    "box_head_channels": "64",
    "mask_head_channels": "16",
    "mask_head_layers": "1",
}

# The `train` program on the CPU in a few seconds: one epoch of the tiny network with the
# "fast" RPN/RoI settings on images of at most 96 px.
TINY_HYPERPARAMETERS = {
    "epochs": "1",
    "batch_size": "2",
    **TINY_ARCHITECTURE,
    "fast": "true",
    "min_size": "64",
    "max_size": "96",
    "detections_per_image": "10",
    "num_workers": "0",
    "log_interval": "1",
    "warmup_steps": "2",
    "lr": "0.01",
}

# The training jobs the local runtime starts (local.hyperparameters): 64 px, and a frozen
# backbone when a job starts from a previous model.
TINY_LOCAL_HYPERPARAMETERS = {
    "epochs": "1",
    **TINY_ARCHITECTURE,
    "min_size": "64",
    "max_size": "64",
    "batch_size": "2",
    "fast": "true",
    "warmup_steps": "1",
    "trainable_backbone_layers": "0",
}


def finish_job(handler: Any, submitted: Any, timeout: float = 60, poll: float = 0.05) -> Any:
    """Poll a local ``.sync`` job handler until it answers (or raises, as a failed job does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = handler.poll(submitted, None)
        if result is not None:
            return result
        time.sleep(poll)
    raise AssertionError(f"the job {submitted} did not end in {timeout:g} s")


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_environ(**extra: str) -> dict[str, str]:
    """The environment of a `train`/`serve` child: ours minus `CHILD_CLEARED`, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHILD_CLEARED)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_serve(programs: Path, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[str]:
    """Start the container's `serve` program from ``programs``, its output in ``log_path``."""
    with log_path.open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, str(programs / "serve")],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def synthetic_dataset(
    root: Path,
    *,
    train: int = 4,
    validation: int = 2,
    test: int = 3,
    size: int = 96,
    seed: int = 0,
) -> Path:
    """Write the synthetic COCO splits (``train/``, ``validation/``, ``test/``) under ``root``."""
    from mask_r_cnn.synthetic import generate

    generate(root, train=train, validation=validation, test=test, size=size, seed=seed)
    return root
