"""Definition checks as Step Functions reports them: diagnostics with AWS's codes and locations.

The checks are the kit's offline validator (:func:`workflow.validate.validate_definition`:
structure, Choice rules, Retry/Catch, integration Parameters) less the kit's own style rules
(an explicit ``ResultPath`` on every Task, the local engine's compatibility notes) and the
required members of integration Parameters, which AWS does not check before the task runs. Each problem becomes a diagnostic of
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html
(``severity``, ``code``, ``message``, ``location`` as a JSON pointer such as ``/States/Train``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from workflow.api.errors import ApiError
from workflow.validate import validate_definition

# Stricter than AWS's create-time checks: the kit's own rules, and required API members (AWS
# reports those when the task runs). They stay in `python -m workflow validate`.
# The kit also keeps state names free of whitespace and punctuation; AWS only limits their
# length (https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html).
_KIT_ONLY = ("no ResultPath;", "local engine", "missing required member", "invalid state name")
_MAX_STATE_NAME = 80
_STATE_MACHINE_NAME = re.compile(r"[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}")


def diagnostics(definition: Any) -> list[dict[str, str]]:
    """Return the ERROR diagnostics of a definition's JSON text (empty: valid).

    Args:
        definition: The ASL document as JSON text.
    """
    if not isinstance(definition, str) or not definition.strip():
        return [_diagnostic("MISSING_DESCRIPTION", "the definition is empty", "/")]
    try:
        document = json.loads(definition)
    except ValueError as exc:
        return [_diagnostic("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {exc}", "/")]
    found = [
        _diagnostic(
            "INVALID_STATE_NAME", f"state name {name!r} is longer than 80 characters", where
        )
        for name, where in _state_names(document, "")
        if len(name) > _MAX_STATE_NAME
    ]
    for line in validate_definition(document, lint=False):
        if any(marker in line for marker in _KIT_ONLY):
            continue
        where, _, message = line.partition(": ")
        found.append(_diagnostic(_code(message), message or line, _pointer(where)))
    return found


def check_definition(definition: Any) -> dict[str, Any]:
    """Return the parsed definition, or raise ``InvalidDefinition`` as CreateStateMachine does.

    Raises:
        ApiError: ``InvalidDefinition`` naming every problem and its location.
    """
    found = diagnostics(definition)
    if found:
        details = "; ".join(f"{d['code']}: {d['message']} at {d['location']}" for d in found)
        raise ApiError("InvalidDefinition", f"Invalid State Machine Definition: '{details}'")
    document: dict[str, Any] = json.loads(definition)
    return document


def check_name(name: Any, what: str = "state machine") -> str:
    """Return a valid resource name or raise ``InvalidName`` (1-80 characters, AWS's set).

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html
    """
    if not isinstance(name, str) or not _STATE_MACHINE_NAME.fullmatch(name):
        raise ApiError(
            "InvalidName",
            f"Invalid Name: '{name}' is not a valid {what} name (1-80 characters; no "
            'whitespace, brackets, wildcards or any of "#%\\^|~`$&,;:/)',
        )
    return name


def _state_names(machine: Any, where: str) -> list[tuple[str, str]]:
    states = machine.get("States") if isinstance(machine, dict) else None
    if not isinstance(states, dict):
        return []
    found = []
    for name, state in states.items():
        path = f"{where}/States/{name}"
        found.append((str(name), path))
        if isinstance(state, dict):
            for index, branch in enumerate(state.get("Branches") or []):
                found += _state_names(branch, f"{path}/Branches/{index}")
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor is not None:
                key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
                found += _state_names(processor, f"{path}/{key}")
    return found


def _diagnostic(code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}


def _code(message: str) -> str:
    if message.startswith("no terminal state"):
        return "MISSING_END_STATE"
    if "is not a state" in message:
        return "MISSING_TRANSITION_TARGET"
    if "is not a known integration ARN" in message or "must be an ARN string" in message:
        return "INVALID_RESOURCE"
    return "SCHEMA_VALIDATION_FAILED"


def _pointer(where: str) -> str:
    """``States.Train.Parameters`` / ``document`` -> ``/States/Train/Parameters`` / ``/``."""
    if where in ("", "document"):
        return "/"
    parts = re.split(r"\.(?![^\[]*\])|\[(\d+)\]", where)
    return "/" + "/".join(p for p in parts if p)


__all__ = ["check_definition", "check_name", "diagnostics"]
