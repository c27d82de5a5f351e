"""Fixtures for the CI files' unit tests."""

from __future__ import annotations

from helpers.buildspec import buildspec  # noqa: F401
