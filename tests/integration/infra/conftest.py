"""Fixtures for the template's programs: configurations and one rendered file per session."""

from __future__ import annotations

from helpers.infra import config, definition_json, make_config, rendered_file  # noqa: F401
