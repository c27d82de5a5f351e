"""Logging setup for the container's entry points (`train`, `serve`, the gunicorn workers).

Only entry points call `configure_logging`; modules just use `logging.getLogger(__name__)`.
Log lines go to stderr; SageMaker sends both streams to CloudWatch, where `MetricDefinitions`
regexes read the `key=value` lines.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "mask_r_cnn"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that always writes to the current `sys.stderr` (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        del value


def configure_logging(rank: int = 0, *, with_pid: bool = False) -> None:
    """Send the package's log lines to stderr (rank 0 at INFO, other ranks at WARNING).

    Calling it again only updates the level, so it is safe in tests that run `main()` twice.
    """
    root = logging.getLogger(LOGGER_NAME)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    if not any(getattr(h, "_mask_r_cnn", False) for h in root.handlers):
        handler = _StderrHandler()
        pid = " [%(process)d]" if with_pid else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s{pid} %(message)s"))
        handler._mask_r_cnn = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
