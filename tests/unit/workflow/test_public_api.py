from __future__ import annotations

import ast
from pathlib import Path

import pytest

import workflow


def test_all_names_exist() -> None:
    for name in workflow.__all__:
        assert getattr(workflow, name) is not None, name
    assert sorted(workflow.__all__) == workflow.__all__


def test_package_root_imports_nothing_of_its_own_eagerly() -> None:
    """Only the standard library at the top level; the API names are imported on first use."""
    tree = ast.parse(Path(workflow.__file__).read_text(encoding="utf-8"))
    eager = []
    for node in tree.body:  # top level only: the TYPE_CHECKING block never runs
        if isinstance(node, ast.Import):
            eager += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            eager.append(node.module or "")
    assert sorted(eager) == ["__future__", "importlib", "typing"]
    assert sorted(workflow._EXPORTS) == workflow.__all__


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        workflow.nope  # noqa: B018
    assert "load_config" in dir(workflow)
