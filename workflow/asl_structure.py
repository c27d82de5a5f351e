"""What AWS refuses at CreateStateMachine (`InvalidDefinition`): the structure of an ASL document.

`structure_problems(document)` returns one sentence per problem, each starting with the path
of the state and field (``States.Train.Next: 'Evaluat' is not a state (did you mean
'Evaluate'?)``): `StartAt` and every `Next`/`Default`/`Catch.Next` name a state, every state
is reachable, a terminal state is reachable, state names are valid, `Type` is known, each state
has only the fields of its type and query language and exactly one of `Next`/`End`, Choice
rules have one comparison, Retry/Catch are well formed.

Field sets per state type and query language follow the AWS States Language pages
(https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html and
https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html): JSONPath states
use InputPath/Parameters/ResultSelector/ResultPath/OutputPath, JSONata states use
Arguments/Output (and `{% %}` values), both use Assign.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from workflow.asl_map import check_map_mode
from workflow.asl_rules import (
    JSONATA,
    JSONPATH,
    check_catch,
    check_choice,
    check_retry,
    check_target,
    hint,
    is_jsonata,
    is_path,
    non_negative_int,
    positive_int,
)

MAX_STATE_NAME_LENGTH: Final = 80

_TOP_LEVEL = {"StartAt", "States", "Comment", "TimeoutSeconds", "Version", "QueryLanguage"}
_COMMON = {"Type", "Comment", "QueryLanguage", "Assign"}
_FIELDS: Final[dict[str, set[str]]] = {
    "Task": _COMMON | {
        "Resource", "Retry", "Catch", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds",
        "HeartbeatSecondsPath", "Next", "End", "Credentials", "InputPath", "OutputPath",
        "Parameters", "ResultPath", "ResultSelector", "Arguments", "Output",
    },
    "Pass": _COMMON | {
        "Next", "End", "InputPath", "OutputPath", "Parameters", "Result", "ResultPath", "Output",
    },
    "Choice": _COMMON | {"Choices", "Default", "InputPath", "OutputPath", "Output"},
    "Wait": _COMMON | {
        "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Next", "End", "InputPath",
        "OutputPath", "Output",
    },
    "Succeed": _COMMON | {"InputPath", "OutputPath", "Output"},
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | {
        "Branches", "Retry", "Catch", "Next", "End", "InputPath", "OutputPath", "Parameters",
        "ResultPath", "ResultSelector", "Arguments", "Output",
    },
    "Map": _COMMON | {
        "Iterator", "ItemProcessor", "ItemSelector", "MaxConcurrency", "Retry", "Catch", "Next",
        "End", "ItemReader", "ResultWriter", "ItemBatcher", "ToleratedFailureCount",
        "ToleratedFailurePercentage", "Label", "InputPath", "OutputPath", "Parameters",
        "ResultPath", "ResultSelector", "ItemsPath", "MaxConcurrencyPath",
        "ToleratedFailureCountPath", "ToleratedFailurePercentagePath", "Items", "Arguments",
        "Output",
    },
}  # fmt: skip
# Fields that belong to one query language only.
_JSONPATH_ONLY: Final = frozenset({
    "InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector", "ItemsPath",
    "SecondsPath", "TimestampPath", "TimeoutSecondsPath", "HeartbeatSecondsPath", "ErrorPath",
    "CausePath", "MaxConcurrencyPath", "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath", "Iterator",
})  # fmt: skip
_JSONATA_ONLY: Final = frozenset({"Arguments", "Output", "Items"})
_TRANSITIONING = {"Task", "Pass", "Wait", "Parallel", "Map"}
_STATE_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,80}")


def structure_problems(document: Any) -> list[str]:
    """Return what AWS would refuse in `document` as `InvalidDefinition` (empty: none)."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        return [f"document: is a {type(document).__name__}, expected a JSON object"]
    language = document.get("QueryLanguage", JSONPATH)
    if language not in (JSONPATH, JSONATA):
        problems.append(f"document.QueryLanguage: {language!r} must be 'JSONPath' or 'JSONata'")
        language = JSONPATH
    check_machine(document, "", problems, language)
    return problems


def check_machine(
    machine: Mapping[str, Any], prefix: str, problems: list[str], language: str
) -> None:
    """Check a state machine or a Parallel branch / Map processor (`prefix` locates it)."""
    where = prefix or "document"
    for key in machine:
        if key not in _TOP_LEVEL:
            problems.append(f"{where}: unknown field {key!r}{hint(key, _TOP_LEVEL)}")
    states = machine.get("States")
    if not isinstance(states, Mapping) or not states:
        problems.append(f"{where}: 'States' must be a non-empty object of states")
        return
    start = machine.get("StartAt")
    if not isinstance(start, str):
        problems.append(f"{where}: 'StartAt' must name the first state")
    elif start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state{hint(start, states)}")
    timeout = machine.get("TimeoutSeconds")
    if timeout is not None and not positive_int(timeout):
        problems.append(f"{where}: TimeoutSeconds = {timeout!r} must be a positive integer")

    for name, state in states.items():
        path = f"{prefix}States.{name}"
        if not _STATE_NAME.fullmatch(name):
            problems.append(
                f"{path}: invalid state name (1-{MAX_STATE_NAME_LENGTH} characters, no "
                "control characters)"
            )
        if not isinstance(state, Mapping):
            problems.append(f"{path}: must be an object")
            continue
        _check_state(state, path, states, problems, language)

    if isinstance(start, str) and start in states:
        reachable = _reachable(start, states)
        for name in states:
            if name not in reachable:
                problems.append(
                    f"{prefix}States.{name}: unreachable from StartAt {start!r} (no Next, "
                    "Default, Choices or Catch leads here); connect it or remove it"
                )
        if not any(_is_terminal(states[n]) for n in reachable if isinstance(states[n], Mapping)):
            problems.append(f"{where}: no terminal state (Succeed, Fail or End: true) is reachable")


def _state_language(
    state: Mapping[str, Any], path: str, inherited: str, problems: list[str]
) -> str:
    language = state.get("QueryLanguage", inherited)
    if language not in (JSONPATH, JSONATA):
        problems.append(f"{path}.QueryLanguage: {language!r} must be 'JSONPath' or 'JSONata'")
        return inherited
    if inherited == JSONATA and language == JSONPATH:
        problems.append(
            f"{path}.QueryLanguage: a JSONPath state cannot be in a JSONata state machine; "
            "set QueryLanguage 'JSONPath' at the top and 'JSONata' on the states that use it"
        )
    return str(language)


def _check_state(
    state: Mapping[str, Any],
    path: str,
    states: Mapping[str, Any],
    problems: list[str],
    inherited: str,
) -> None:
    kind = state.get("Type")
    if kind not in _FIELDS:
        problems.append(f"{path}.Type: {kind!r} is not one of {', '.join(sorted(_FIELDS))}")
        return
    language = _state_language(state, path, inherited, problems)
    other_only = _JSONPATH_ONLY if language == JSONATA else _JSONATA_ONLY
    allowed = _FIELDS[kind] - other_only
    for key in state:
        if key in other_only and key in _FIELDS[kind]:
            problems.append(
                f"{path}.{key}: field {key!r} does not belong to a {language} state (set "
                f"QueryLanguage to {'JSONPath' if language == JSONATA else 'JSONata'} to use it)"
            )
        elif key not in allowed:
            problems.append(
                f"{path}.{key}: field {key!r} does not belong to a {kind} state{hint(key, allowed)}"
            )

    if kind in _TRANSITIONING:
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            problems.append(
                f"{path}: a {kind} state needs exactly one of 'Next' or 'End: true'"
                + (" (it has both)" if has_next else " (it has neither)")
            )
    check_target(state.get("Next"), f"{path}.Next", states, problems)
    for field in ("InputPath", "OutputPath", "ResultPath", "ItemsPath"):
        if field in state and state[field] is not None and not is_path(state[field]):
            problems.append(f"{path}.{field}: {state[field]!r} must be a path starting with '$'")
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field in state and language == JSONPATH:
            check_template(state[field], f"{path}.{field}", problems)

    if kind == "Task":
        _check_task(state, path, problems)
    elif kind == "Choice":
        check_choice(state, path, states, problems, language)
    elif kind == "Wait":
        _check_wait(state, path, problems)
    elif kind == "Fail":
        for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if a in state and b in state:
                problems.append(f"{path}: give either {a} or {b}, not both")
    elif kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            problems.append(f"{path}.Branches: must be a non-empty list of state machines")
        else:
            for i, branch in enumerate(branches):
                _check_sub_machine(branch, f"{path}.Branches[{i}].", problems, language)
    elif kind == "Map":
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if processor is None:
            problems.append(f"{path}: a Map state needs ItemProcessor (or Iterator)")
        else:
            _check_sub_machine(processor, f"{path}.ItemProcessor.", problems, language)
        check_map_mode(state, path, problems, language)
    if kind in ("Task", "Parallel", "Map"):
        check_retry(state.get("Retry"), f"{path}.Retry", problems)
        check_catch(state.get("Catch"), f"{path}.Catch", states, problems, language)


def _check_wait(state: Mapping[str, Any], path: str, problems: list[str]) -> None:
    given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in state]
    if len(given) != 1:
        problems.append(
            f"{path}: a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, "
            "TimestampPath"
        )
    seconds = state.get("Seconds")
    if "Seconds" in state and not (non_negative_int(seconds) or is_jsonata(seconds)):
        problems.append(f"{path}.Seconds: {seconds!r} must be a non-negative integer")


def _check_sub_machine(machine: Any, prefix: str, problems: list[str], language: str) -> None:
    if not isinstance(machine, Mapping):
        problems.append(f"{prefix.rstrip('.')}: must be an object with StartAt and States")
        return
    inner = {k: v for k, v in machine.items() if k != "ProcessorConfig"}
    check_machine(inner, prefix, problems, str(inner.get("QueryLanguage", language)))


def _successors(state: Mapping[str, Any]) -> Iterator[str]:
    for key in ("Next", "Default"):
        if isinstance(state.get(key), str):
            yield state[key]
    for rule in state.get("Choices") or []:
        if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
            yield rule["Next"]
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
            yield catcher["Next"]


def _reachable(start: str, states: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        if isinstance(state, Mapping):
            todo.extend(_successors(state))
    return seen


def _is_terminal(state: Mapping[str, Any]) -> bool:
    return state.get("Type") in ("Succeed", "Fail") or state.get("End") is True


def _check_task(state: Mapping[str, Any], path: str, problems: list[str]) -> None:
    resource = state.get("Resource")
    if not isinstance(resource, str) or not resource:
        problems.append(f"{path}.Resource: must be an ARN string")
    for a, b in (
        ("TimeoutSeconds", "TimeoutSecondsPath"),
        ("HeartbeatSeconds", "HeartbeatSecondsPath"),
    ):
        if a in state and b in state:
            problems.append(f"{path}: give either {a} or {b}, not both")
    for field in ("TimeoutSeconds", "HeartbeatSeconds"):
        value = state.get(field)
        if field in state and not (positive_int(value) or is_jsonata(value)):
            problems.append(f"{path}.{field}: {value!r} must be a positive integer")
    timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
    if (
        isinstance(timeout, int)
        and isinstance(heartbeat, int)
        and positive_int(timeout)
        and positive_int(heartbeat)
        and heartbeat >= timeout
    ):
        problems.append(f"{path}.HeartbeatSeconds: must be smaller than TimeoutSeconds")


def check_template(template: Any, path: str, problems: list[str]) -> None:
    """Check a JSONPath payload template: every `.$` key holds a path or an intrinsic."""
    if isinstance(template, Mapping):
        for key, value in template.items():
            if isinstance(key, str) and key.endswith(".$"):
                if not isinstance(value, str):
                    problems.append(f"{path}.{key}: a '.$' key needs a path or intrinsic string")
                elif not (value.startswith(("$", "States."))):
                    problems.append(
                        f"{path}.{key}: {value!r} is neither a path ('$...') nor an intrinsic "
                        "('States.*'); drop the '.$' suffix for a literal"
                    )
            else:
                check_template(value, f"{path}.{key}", problems)
    elif isinstance(template, list):
        for i, item in enumerate(template):
            check_template(item, f"{path}[{i}]", problems)
