"""Fixtures of the notebook helpers' integration tests: sessions on a tmp project."""

from __future__ import annotations

from helpers.notebook_session import make_session, project  # noqa: F401
