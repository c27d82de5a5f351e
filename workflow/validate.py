"""Offline checks of an ASL document: structure, Choice rules, Retry/Catch, and task Parameters.

`validate_definition(document)` returns one line per problem (empty: valid), each starting with
the state's path, e.g. ``States.Train.Parameters.TrainingJobNam: not a member of
CreateTrainingJobRequest (did you mean TrainingJobName?)``. The checks:

1. Structure: ``StartAt`` names a state, every ``Next``/``Default``/``Catch.Next`` exists, every
   state is reachable from ``StartAt``, a terminal state is reachable, state names are valid,
   each state type has its required fields and no unknown ones, exactly one of ``Next``/``End``.
2. Choice rules: one comparator per rule (or And/Or/Not), a ``Variable`` path, values of the
   comparator's type, ``Next`` on top-level rules only.
3. Retry and Catch: non-empty ``ErrorEquals``, ``States.ALL`` alone and last, positive
   intervals, ``BackoffRate`` >= 1, ``Catch.Next``.
4. Parameters of every SageMaker, Lambda, SNS, CodeBuild, Step Functions and ``aws-sdk`` task,
   against botocore's model of the API's input shape: unknown members (a misspelled field fails
   here, not in AWS), static values of the wrong type, and required members given neither
   statically nor through a ``.$`` key (``Key.$`` is checked as ``Key``).
5. Local-engine compatibility (the local runtime interprets the same document): no ``$$`` path
   as the value of a ``*Path`` Choice comparator, no escapes inside intrinsic string literals,
   an explicit ``ResultPath`` on every Task.

`statelint` (the Python port of AWS's linter) runs too when it is installed.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_STATE_NAME_LENGTH = 80

_TOP_LEVEL = {"StartAt", "States", "Comment", "TimeoutSeconds", "Version", "QueryLanguage"}
_COMMON = {"Type", "Comment", "QueryLanguage"}
_IO = {"InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Task": _COMMON | _IO | {
        "Resource", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch",
        "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
        "Next", "End", "Credentials", "Assign", "Arguments", "Output",
    },
    "Pass": _COMMON | _IO | {"Parameters", "Result", "ResultPath", "Next", "End", "Assign", "Output"},
    "Choice": _COMMON | _IO | {"Choices", "Default", "Assign", "Output"},
    "Wait": _COMMON | _IO | {
        "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Next", "End", "Assign", "Output",
    },
    "Succeed": _COMMON | _IO | {"Output"},
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | _IO | {
        "Branches", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch", "Next", "End",
        "Assign", "Arguments", "Output",
    },
    "Map": _COMMON | _IO | {
        "Iterator", "ItemProcessor", "ItemsPath", "ItemSelector", "MaxConcurrency", "Parameters",
        "ResultPath", "ResultSelector", "Retry", "Catch", "Next", "End", "ItemReader",
        "ResultWriter", "ItemBatcher", "MaxConcurrencyPath", "ToleratedFailureCount",
        "ToleratedFailurePercentage", "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath", "Label", "Items", "Assign", "Arguments", "Output",
    },
}  # fmt: skip
_TRANSITIONING = {"Task", "Pass", "Wait", "Parallel", "Map"}
_STATE_NAME = re.compile(r"[^\s\"#%*<>?\[\\\]^`{|}~\x00-\x1f\x7f]{1,80}")

_COMPARATORS: dict[str, str] = {
    **{f"String{op}": "string" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    **{f"Numeric{op}": "number" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    **{f"Timestamp{op}": "string" for op in (
        "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")},
    "BooleanEquals": "boolean",
    "StringMatches": "string",
    **{f"Is{kind}": "boolean" for kind in (
        "Null", "Present", "Numeric", "String", "Boolean", "Timestamp")},
}  # fmt: skip
_PATH_COMPARATORS = {
    f"{name}Path" for name in _COMPARATORS if not name.startswith("Is") and name != "StringMatches"
}

# Step Functions integration name -> botocore service name.
_SERVICES = {
    "sagemaker": "sagemaker",
    "lambda": "lambda",
    "sns": "sns",
    "codebuild": "codebuild",
    "ssm": "ssm",
    "states": "stepfunctions",
    "sfn": "stepfunctions",
    "s3": "s3",
    "sqs": "sqs",
    "ecr": "ecr",
    "secretsmanager": "secretsmanager",
}
_RESOURCE = re.compile(
    r"arn:aws[a-z-]*:states:::(?:(?P<sdk>aws-sdk):)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.(?P<pattern>sync|waitForTaskToken))?(?::\d+)?"
)
_CHECKED_SERVICES = {"sagemaker", "lambda", "sns", "codebuild", "ssm", "states", "sfn"}


def validate_definition(document: Any, *, lint: bool = True) -> list[str]:
    """Return the problems of an ASL document, one line each (empty when it is valid).

    Args:
        document: The parsed ASL (a dict).
        lint: Also run `statelint` when it is installed.
    """
    problems: list[str] = []
    if not isinstance(document, Mapping):
        return [f"document: is a {type(document).__name__}, expected a JSON object"]
    _check_machine(document, "", problems)
    if lint:
        problems.extend(_statelint(document))
    return problems


def validate_config(config: Any) -> list[str]:
    """Render the configuration's state machine and return its problems."""
    from workflow.definition import render_definition

    return validate_definition(render_definition(config))


# ---------------------------------------------------------------------------------------------
# 1. structure
# ---------------------------------------------------------------------------------------------


def _check_machine(machine: Mapping[str, Any], prefix: str, problems: list[str]) -> None:
    where = prefix or "document"
    for key in machine:
        if key not in _TOP_LEVEL:
            problems.append(f"{where}: unknown field {key!r}{_hint(key, _TOP_LEVEL)}")
    states = machine.get("States")
    if not isinstance(states, Mapping) or not states:
        problems.append(f"{where}: 'States' must be a non-empty object of states")
        return
    start = machine.get("StartAt")
    if not isinstance(start, str):
        problems.append(f"{where}: 'StartAt' must name the first state")
    elif start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state{_hint(start, states)}")
    timeout = machine.get("TimeoutSeconds")
    if timeout is not None and not _positive_int(timeout):
        problems.append(f"{where}: TimeoutSeconds = {timeout!r} must be a positive integer")

    for name, state in states.items():
        path = f"{prefix}States.{name}"
        if not _STATE_NAME.fullmatch(name):
            problems.append(
                f"{path}: invalid state name (1-{MAX_STATE_NAME_LENGTH} characters, no "
                'whitespace or any of "#%*<>?[\\]^`{|}~)'
            )
        if not isinstance(state, Mapping):
            problems.append(f"{path}: must be an object")
            continue
        _check_state(name, state, path, states, problems)

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


def _check_state(
    name: str,
    state: Mapping[str, Any],
    path: str,
    states: Mapping[str, Any],
    problems: list[str],
) -> None:
    kind = state.get("Type")
    if kind not in _FIELDS:
        problems.append(f"{path}: Type = {kind!r} is not one of {', '.join(sorted(_FIELDS))}")
        return
    allowed = _FIELDS[kind]
    for key in state:
        if key not in allowed:
            problems.append(
                f"{path}: unknown field {key!r} for a {kind} state{_hint(key, allowed)}"
            )

    if kind in _TRANSITIONING:
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            problems.append(f"{path}: needs exactly one of 'Next' or 'End: true'")
    _check_target(state.get("Next"), f"{path}.Next", states, problems)

    for field in ("InputPath", "OutputPath", "ResultPath"):
        if field in state and state[field] is not None and not _is_path(state[field]):
            problems.append(f"{path}.{field}: {state[field]!r} must be a path starting with '$'")
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field in state:
            _check_template(state[field], f"{path}.{field}", problems)

    if kind == "Task":
        _check_task(state, path, problems)
    elif kind == "Choice":
        _check_choice(state, path, states, problems)
    elif kind == "Wait":
        given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in state]
        if len(given) != 1:
            problems.append(
                f"{path}: needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath"
            )
        if "Seconds" in state and not _non_negative_int(state["Seconds"]):
            problems.append(f"{path}.Seconds: {state['Seconds']!r} must be a non-negative integer")
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
                _check_sub_machine(branch, f"{path}.Branches[{i}].", problems)
    elif kind == "Map":
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if processor is None:
            problems.append(f"{path}: needs ItemProcessor (or Iterator)")
        else:
            _check_sub_machine(processor, f"{path}.ItemProcessor.", problems)

    if kind in ("Task", "Parallel", "Map"):
        _check_retry(state.get("Retry"), f"{path}.Retry", problems)
        _check_catch(state.get("Catch"), f"{path}.Catch", states, problems)


def _check_sub_machine(machine: Any, prefix: str, problems: list[str]) -> None:
    if not isinstance(machine, Mapping):
        problems.append(f"{prefix.rstrip('.')}: must be an object with StartAt and States")
        return
    inner = {k: v for k, v in machine.items() if k != "ProcessorConfig"}
    _check_machine(inner, prefix, problems)


def _check_target(target: Any, path: str, states: Mapping[str, Any], problems: list[str]) -> None:
    if target is None:
        return
    if not isinstance(target, str) or target not in states:
        problems.append(f"{path}: {target!r} is not a state{_hint(str(target), states)}")


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


# ---------------------------------------------------------------------------------------------
# 2. Choice rules
# ---------------------------------------------------------------------------------------------


def _check_choice(
    state: Mapping[str, Any], path: str, states: Mapping[str, Any], problems: list[str]
) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        problems.append(f"{path}.Choices: must be a non-empty list of rules")
        return
    for i, rule in enumerate(choices):
        rule_path = f"{path}.Choices[{i}]"
        _check_rule(rule, rule_path, problems, top=True)
        if isinstance(rule, Mapping):
            _check_target(rule.get("Next"), f"{rule_path}.Next", states, problems)
    _check_target(state.get("Default"), f"{path}.Default", states, problems)


def _check_rule(rule: Any, path: str, problems: list[str], *, top: bool) -> None:
    if not isinstance(rule, Mapping):
        problems.append(f"{path}: must be an object")
        return
    if top and "Next" not in rule:
        problems.append(f"{path}: a top-level Choice rule needs 'Next'")
    if not top and "Next" in rule:
        problems.append(f"{path}: 'Next' is only allowed on top-level Choice rules")
    operators = [k for k in rule if k in ("And", "Or", "Not")]
    comparators = [k for k in rule if k in _COMPARATORS or k in _PATH_COMPARATORS]
    known = {"Next", "Variable", "Comment", "And", "Or", "Not", *_COMPARATORS, *_PATH_COMPARATORS}
    for key in rule:
        if key not in known:
            problems.append(f"{path}: unknown field {key!r} in a Choice rule{_hint(key, known)}")
    if len(operators) + len(comparators) != 1:
        problems.append(
            f"{path}: needs exactly one comparator (e.g. NumericGreaterThanEquals) or one of "
            f"And/Or/Not, found {', '.join(operators + comparators) or 'none'}"
        )
        return
    if operators:
        op = operators[0]
        if "Variable" in rule:
            problems.append(f"{path}: {op} takes no 'Variable'")
        if op == "Not":
            _check_rule(rule["Not"], f"{path}.Not", problems, top=False)
        elif not isinstance(rule[op], list) or not rule[op]:
            problems.append(f"{path}.{op}: must be a non-empty list of rules")
        else:
            for i, sub in enumerate(rule[op]):
                _check_rule(sub, f"{path}.{op}[{i}]", problems, top=False)
        return
    comparator = comparators[0]
    variable = rule.get("Variable")
    if not _is_path(variable):
        problems.append(f"{path}.Variable: {variable!r} must be a path starting with '$'")
    value = rule[comparator]
    if comparator in _PATH_COMPARATORS:
        if not _is_path(value):
            problems.append(f"{path}.{comparator}: {value!r} must be a path starting with '$'")
        elif str(value).startswith("$$"):
            problems.append(
                f"{path}.{comparator}: {value!r} is a context path; the local engine cannot "
                "compare against '$$' paths: copy the value into the state data first"
            )
        return
    expected = _COMPARATORS[comparator]
    if not _is_type(value, expected):
        problems.append(f"{path}.{comparator}: {value!r} must be a {expected}")


# ---------------------------------------------------------------------------------------------
# 3. Retry and Catch
# ---------------------------------------------------------------------------------------------


def _check_error_equals(errors: Any, path: str, problems: list[str]) -> None:
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
        problems.append(f"{path}.ErrorEquals: must be a non-empty list of error names")
        return
    if "States.ALL" in errors and errors != ["States.ALL"]:
        problems.append(f"{path}.ErrorEquals: States.ALL must be the only error name")


def _check_all_last(entries: list[Any], path: str, problems: list[str]) -> None:
    for i, entry in enumerate(entries[:-1]):
        if isinstance(entry, Mapping) and entry.get("ErrorEquals") == ["States.ALL"]:
            problems.append(f"{path}[{i}]: States.ALL must be in the last entry")


def _check_retry(retry: Any, path: str, problems: list[str]) -> None:
    if retry is None:
        return
    if not isinstance(retry, list):
        problems.append(f"{path}: must be a list of retriers")
        return
    allowed = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "Comment",
               "MaxDelaySeconds", "JitterStrategy"}  # fmt: skip
    for i, entry in enumerate(retry):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{entry_path}: must be an object")
            continue
        for key in entry:
            if key not in allowed:
                problems.append(f"{entry_path}: unknown field {key!r}{_hint(key, allowed)}")
        _check_error_equals(entry.get("ErrorEquals"), entry_path, problems)
        if "IntervalSeconds" in entry and not _positive_int(entry["IntervalSeconds"]):
            problems.append(f"{entry_path}.IntervalSeconds: must be a positive integer")
        if "MaxAttempts" in entry and not _non_negative_int(entry["MaxAttempts"]):
            problems.append(f"{entry_path}.MaxAttempts: must be a non-negative integer")
        rate = entry.get("BackoffRate", 2.0)
        if not _is_type(rate, "number") or rate < 1.0:
            problems.append(f"{entry_path}.BackoffRate: {rate!r} must be a number >= 1.0")
    _check_all_last(retry, path, problems)


def _check_catch(catch: Any, path: str, states: Mapping[str, Any], problems: list[str]) -> None:
    if catch is None:
        return
    if not isinstance(catch, list):
        problems.append(f"{path}: must be a list of catchers")
        return
    allowed = {"ErrorEquals", "Next", "ResultPath", "Comment", "Assign", "Output"}
    for i, entry in enumerate(catch):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{entry_path}: must be an object")
            continue
        for key in entry:
            if key not in allowed:
                problems.append(f"{entry_path}: unknown field {key!r}{_hint(key, allowed)}")
        _check_error_equals(entry.get("ErrorEquals"), entry_path, problems)
        if "Next" not in entry:
            problems.append(f"{entry_path}: needs 'Next'")
        _check_target(entry.get("Next"), f"{entry_path}.Next", states, problems)
        result = entry.get("ResultPath", "$")
        if result is not None and not _is_path(result):
            problems.append(f"{entry_path}.ResultPath: {result!r} must be a path or null")
    _check_all_last(catch, path, problems)


# ---------------------------------------------------------------------------------------------
# 4. Task parameters against botocore's service models
# ---------------------------------------------------------------------------------------------


def _check_task(state: Mapping[str, Any], path: str, problems: list[str]) -> None:
    resource = state.get("Resource")
    if not isinstance(resource, str) or not resource:
        problems.append(f"{path}.Resource: must be an ARN string")
        return
    for a, b in (
        ("TimeoutSeconds", "TimeoutSecondsPath"),
        ("HeartbeatSeconds", "HeartbeatSecondsPath"),
    ):
        if a in state and b in state:
            problems.append(f"{path}: give either {a} or {b}, not both")
    for field in ("TimeoutSeconds", "HeartbeatSeconds"):
        if field in state and not _positive_int(state[field]):
            problems.append(f"{path}.{field}: {state[field]!r} must be a positive integer")
    timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
    if (
        isinstance(timeout, int)
        and isinstance(heartbeat, int)
        and _positive_int(timeout)
        and _positive_int(heartbeat)
        and heartbeat >= timeout
    ):
        problems.append(f"{path}.HeartbeatSeconds: must be smaller than TimeoutSeconds")
    if "ResultPath" not in state:
        problems.append(
            f"{path}: no ResultPath; the task's result would replace the whole state data "
            "(set ResultPath, e.g. '$.Result', or null to discard it)"
        )
    match = _RESOURCE.fullmatch(resource)
    if match is None:
        if resource.startswith("arn:aws") and ":states:::" in resource:
            problems.append(f"{path}.Resource: {resource!r} is not a known integration ARN")
        return  # an activity or a Lambda function ARN: nothing to check against
    service, action = match.group("service"), match.group("action")
    token_missing = "$$.Task.Token" not in _values(state.get("Parameters"))
    if match.group("pattern") == "waitForTaskToken" and token_missing:
        problems.append(
            f"{path}.Parameters: a .waitForTaskToken task must pass '$$.Task.Token' "
            '(e.g. "TaskToken.$": "$$.Task.Token")'
        )
    if service not in _CHECKED_SERVICES:
        return
    botocore_name = _SERVICES[service]
    operation = action[0].upper() + action[1:]
    model = _service_model(botocore_name)
    if model is None:
        return
    if operation not in model.operation_names:
        problems.append(
            f"{path}.Resource: {service} has no API {action!r}"
            f"{_hint(operation, model.operation_names)}"
        )
        return
    shape = model.operation_model(operation).input_shape
    parameters = state.get("Parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        if not isinstance(parameters, str):
            problems.append(f"{path}.Parameters: must be an object")
        return
    if shape is not None:
        _check_shape(
            parameters, shape, f"{path}.Parameters", problems, lambda_payload=service == "lambda"
        )


def _check_shape(
    value: Any, shape: Any, path: str, problems: list[str], *, lambda_payload: bool = False
) -> None:
    """Check a static value against a botocore shape (structures recursively)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            problems.append(f"{path}: {_short(value)} must be an object ({shape.name})")
            return
        members = {_normal(m): m for m in shape.members}
        given: set[str] = set()
        for key, item in value.items():
            dynamic = key.endswith(".$")
            name = key[:-2] if dynamic else key
            member = members.get(_normal(name))
            if member is None:
                problems.append(
                    f"{path}.{name}: not a member of {shape.name}{_hint(name, shape.members)}"
                )
                continue
            given.add(member)
            if dynamic:
                if not isinstance(item, str) or not (item.startswith(("$", "States."))):
                    problems.append(f"{path}.{key}: {_short(item)} must be a path or an intrinsic")
                continue
            member_shape = shape.members[member]
            if lambda_payload and member == "Payload":
                continue  # Step Functions sends any JSON as the payload
            _check_shape(item, member_shape, f"{path}.{name}", problems)
        for required in shape.required_members:
            if required not in given:
                problems.append(
                    f"{path}: missing required member {required!r} of {shape.name} (give it "
                    f"statically or as '{required}.$')"
                )
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: {_short(value)} must be a list")
            return
        for i, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, Mapping):
            problems.append(f"{path}: {_short(value)} must be an object")
            return
        for key, item in value.items():
            if isinstance(key, str) and key.endswith(".$"):
                continue
            _check_shape(item, shape.value, f"{path}.{key}", problems)
    elif kind in ("string", "timestamp"):
        if not isinstance(value, str):
            problems.append(f"{path}: {_short(value)} must be a string")
        elif shape.enum and value not in shape.enum:
            problems.append(
                f"{path}: {value!r} is not one of {', '.join(shape.enum[:12])}"
                f"{', ...' if len(shape.enum) > 12 else ''}"
            )
    elif kind in ("integer", "long"):
        if not _is_type(value, "integer"):
            problems.append(f"{path}: {_short(value)} must be an integer")
    elif kind in ("float", "double"):
        if not _is_type(value, "number"):
            problems.append(f"{path}: {_short(value)} must be a number")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: {_short(value)} must be true or false")
    # blob and document shapes take any JSON in Step Functions


@functools.cache
def _service_model(name: str) -> Any:
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(name)
    except Exception:  # a service unknown to this botocore: nothing to check against
        return None


def _normal(name: str) -> str:
    # Step Functions capitalises SDK members (codebuild's projectName is ProjectName).
    return name[:1].upper() + name[1:]


# ---------------------------------------------------------------------------------------------
# 5. templates and local-engine compatibility
# ---------------------------------------------------------------------------------------------

_INTRINSIC_ESCAPE = re.compile(r"'[^']*\\")


def _check_template(template: Any, path: str, problems: list[str]) -> None:
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
                elif value.startswith("States.") and _INTRINSIC_ESCAPE.search(value):
                    problems.append(
                        f"{path}.{key}: escapes inside intrinsic string literals are not "
                        "supported by the local engine; rephrase the literal without '\\'"
                    )
            else:
                _check_template(value, f"{path}.{key}", problems)
    elif isinstance(template, list):
        for i, item in enumerate(template):
            _check_template(item, f"{path}[{i}]", problems)


def _values(template: Any) -> Iterator[Any]:
    if isinstance(template, Mapping):
        for value in template.values():
            yield from _values(value)
    elif isinstance(template, list):
        for item in template:
            yield from _values(item)
    else:
        yield template


def _statelint(document: Mapping[str, Any]) -> list[str]:
    try:
        from statelint.linter import Linter
    except ImportError:
        return []
    return [f"statelint: {problem}" for problem in Linter.validate(dict(document))]


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_type(value: Any, expected: str) -> bool:
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


__all__ = ["validate_config", "validate_definition"]
