"""Every numeric configuration key that feeds a template parameter has the parameter's bounds.

A value the configuration accepts but CloudFormation refuses (``MinValue``/``MaxValue``) only
fails at deploy time; e.g. ``approval.link_ttl_seconds`` once accepted 60 although the template's
``ApprovalLinkTtlSeconds`` starts at 300.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from workflow import infra
from workflow.config import WorkflowConfig, known_keys, load_config
from workflow.config.checks import Range

TINY_ASL = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


def _bounds() -> dict[str, Range]:
    """Return the `Range` of every key that has one."""
    out: dict[str, Range] = {}
    for key in known_keys():
        model: Any = WorkflowConfig
        *sections, leaf = key.split(".")
        for part in sections:
            model = model.model_fields[part].annotation
            assert issubclass(model, BaseModel)
        for item in model.model_fields[leaf].metadata:
            if isinstance(getattr(item, "func", None), Range):
                out[key] = item.func
    return out


def _parameter_defaults(config: WorkflowConfig) -> dict[str, Any]:
    template = infra.render_template(config, definition_json=TINY_ASL)
    return {name: spec.get("Default") for name, spec in template["Parameters"].items()}


def _fed_parameters(key: str, bound: Range, baseline: dict[str, Any], make: Any) -> dict[str, Any]:
    """Return the template parameters whose value follows configuration key ``key``."""
    default = make().to_dict()
    for part in key.split("."):
        default = default[part]
    value = bound.high if bound.high != default else bound.low
    changed = _parameter_defaults(make({key: int(value) if isinstance(default, int) else value}))
    return {name: spec for name, spec in changed.items() if spec != baseline[name]}


def test_bounds_are_the_templates(make_config: Any) -> None:
    template = infra.load_template()
    baseline = _parameter_defaults(make_config())
    checked = []
    for key, bound in _bounds().items():
        for name in _fed_parameters(key, bound, baseline, make_config):
            parameter = template["Parameters"][name]
            if "MinValue" in parameter or "MaxValue" in parameter:
                assert (bound.low, bound.high) == (
                    parameter.get("MinValue", bound.low),
                    parameter.get("MaxValue", bound.high),
                ), f"{key} takes {bound.low:g}..{bound.high:g}, template parameter {name} " + (
                    f"{parameter.get('MinValue')}..{parameter.get('MaxValue')}"
                )
                checked.append((key, name))
    assert ("approval.link_ttl_seconds", "ApprovalLinkTtlSeconds") in checked


@pytest.mark.parametrize("value", [299, 604801])
def test_link_ttl_outside_the_template_is_refused(make_config: Any, value: int) -> None:
    from workflow.errors import ConfigError

    with pytest.raises(ConfigError, match=r"is out of range \(expected 300 to 604800 seconds\)"):
        make_config(approval__link_ttl_seconds=value)
    assert load_config(environ={}, overrides={"approval.link_ttl_seconds": 300})
