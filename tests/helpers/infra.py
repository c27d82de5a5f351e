"""Configurations and one rendering of the template, shared per session by the infra tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workflow.config import WorkflowConfig, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def make_config() -> Callable[..., WorkflowConfig]:
    """Factory: the repository's workflow.yaml with dotted-key overrides on top."""

    def make(**overrides: Any) -> WorkflowConfig:
        return load_config(REPO / "workflow.yaml", environ={}, overrides=overrides or None)

    return make


@pytest.fixture(scope="session")
def config(make_config: Callable[..., WorkflowConfig]) -> WorkflowConfig:
    return make_config(account_id="123456789012", region="eu-west-1")


@pytest.fixture(scope="session")
def definition_json(config: WorkflowConfig) -> str:
    from workflow.definition import render_json

    return render_json(config)


@pytest.fixture(scope="session")
def rendered(config: WorkflowConfig, definition_json: str) -> dict[str, Any]:
    from workflow.infra import render_template

    return render_template(config, definition_json)


@pytest.fixture(scope="session")
def rendered_file(
    tmp_path_factory: pytest.TempPathFactory, config: WorkflowConfig, definition_json: str
) -> Path:
    from workflow.infra import write_rendered

    out = tmp_path_factory.mktemp("infra") / "template.yaml"
    return write_rendered(config, out, definition_json=definition_json)


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement of the template as (resource name, statement)."""
    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [
            p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p
        ]
        documents += [p for p in props.get("Policies", []) if "Statement" in p]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                found.append((name, statement))
    return found


@pytest.fixture(scope="session")
def all_statements(rendered: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return statements(rendered)
