"""Training checkpoints in `checkpoints/`: atomic writes, newest-first resume.

SageMaker syncs `/opt/ml/checkpoints` with `CheckpointConfig.S3Uri` in both directions (managed
spot training), so a restarted job finds the files of the interrupted one. A checkpoint is
written to a temporary file, flushed and renamed, so a SIGKILL never leaves a half-written
`checkpoint-*.pth`; the names carry the global step, so no file is ever overwritten.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from .storage import save_torch

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d{9})\.pth$")


def checkpoint_name(global_step: int) -> str:
    """Return the file name of the checkpoint taken after `global_step` steps."""
    return f"checkpoint-{global_step:09d}.pth"


def list_checkpoints(directory: Path) -> list[Path]:
    """Return the checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory: Path, state: dict[str, Any], global_step: int, keep: int) -> Path:
    """Write `state` atomically as `checkpoint-<step>.pth` and keep only the newest `keep`.

    Args:
        directory: the checkpoint folder (created if missing).
        state: what `torch.save` should store.
        global_step: the number of optimizer steps done so far.
        keep: how many checkpoints to keep.

    Returns:
        The path written (or the existing one, if this step was saved already).

    Raises:
        NoSpaceError: the disk is full; no partial file is left behind.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / checkpoint_name(global_step)
    if path.exists():
        return path
    save_torch(path, state, f"checkpoint {path.name}")
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    logger.info("checkpoint=%s step=%d", path.name, global_step)
    return path


def load_latest(directory: Path) -> dict[str, Any] | None:
    """Load the newest readable checkpoint in `directory`, or None when there is none.

    A checkpoint that cannot be read (for example truncated by a copy) is skipped with a
    warning and the next older one is tried.
    """
    for path in reversed(list_checkpoints(directory)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file: fall back to an older one
            logger.warning("skipping unreadable checkpoint %s: %s", path, exc)
            continue
        if isinstance(state, dict):
            state["path"] = str(path)
            return state
    return None
