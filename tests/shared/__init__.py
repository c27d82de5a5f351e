"""Fixtures and helpers that a unit test folder and its integration twin both use.

``tests/`` is on ``sys.path`` while pytest runs (its conftest is not in a package), so a conftest
imports what it needs from here: ``from shared.infra import config  # noqa: F401``.
"""
