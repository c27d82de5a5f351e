"""Fixtures for the benchmark unit tests: `bench` importable, a loopback echo server."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:  # `bench/` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from helpers.echo_server import echo_server  # noqa: E402, F401
