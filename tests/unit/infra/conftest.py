"""Fixtures for the template tests: configurations and one rendering shared per session."""

from __future__ import annotations

from helpers.infra import (  # noqa: F401
    all_statements,
    config,
    definition_json,
    make_config,
    rendered,
    rendered_file,
)
