"""Offline checks of an ASL document: what AWS refuses, and task Parameters against botocore.

`validate_definition(document)` returns one line per problem (empty: valid), each starting with
the state's path, e.g. ``States.Train.Parameters.TrainingJobNam: not a member of
CreateTrainingJobRequest (did you mean TrainingJobName?)``. The checks:

1. What AWS refuses as `InvalidDefinition` (`workflow.asl_structure.structure_problems`):
   structure, reachability, fields per state type and query language (JSONPath and JSONata,
   variables included), Choice rules, Retry and Catch.
2. Parameters of every JSONPath SageMaker, Lambda, SNS, CodeBuild, Step Functions and
   ``aws-sdk`` task, against botocore's model of the API's input shape: unknown members (a
   misspelled field fails here, not in AWS), static values of the wrong type, and required
   members given neither statically nor through a ``.$`` key (``Key.$`` is checked as ``Key``).

A Task without ``ResultPath`` is valid (its result replaces the state's input, as on AWS).
`statelint` (the Python port of AWS's linter) runs too when it is installed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from workflow.asl_map import FIELD_NAMES as DISTRIBUTED_MAP_FIELDS
from workflow.asl_rules import JSONATA, JSONPATH, hint, is_type, short
from workflow.asl_structure import MAX_STATE_NAME_LENGTH, structure_problems

# statelint's refusal of a field; those of Distributed Maps are checked by workflow.asl_map.
_STATELINT_FIELD = re.compile(r'Field "([^"]+)" not allowed')
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
    problems = structure_problems(document)
    if not isinstance(document, Mapping):
        return problems
    language = str(document.get("QueryLanguage", JSONPATH))
    for path, state in _task_states(document, "", language):
        _check_task(state, path, problems)
    if lint:
        problems.extend(_statelint(document))
    return problems


def validate_config(config: Any) -> list[str]:
    """Render the configuration's state machine and return its problems."""
    from workflow.definition import render_definition

    return validate_definition(render_definition(config))


def _task_states(
    machine: Mapping[str, Any], prefix: str, language: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    states = machine.get("States")
    if not isinstance(states, Mapping):
        return
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        path = f"{prefix}States.{name}"
        state_language = str(state.get("QueryLanguage", language))
        if state.get("Type") == "Task" and state_language != JSONATA:
            yield path, state
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, Mapping):
                yield from _task_states(branch, f"{path}.Branches[{i}].", state_language)
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if isinstance(processor, Mapping):
            yield from _task_states(processor, f"{path}.ItemProcessor.", state_language)


def _check_task(state: Mapping[str, Any], path: str, problems: list[str]) -> None:
    resource = state.get("Resource")
    match = _RESOURCE.fullmatch(resource) if isinstance(resource, str) else None
    if match is None:
        if (
            isinstance(resource, str)
            and resource.startswith("arn:aws")
            and ":states:::" in resource
        ):
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
    model = _service_model(_SERVICES[service])
    if model is None:
        return
    operation = action[0].upper() + action[1:]
    if operation not in model.operation_names:
        problems.append(
            f"{path}.Resource: {service} has no API {action!r}"
            f"{hint(operation, model.operation_names)}"
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
            problems.append(f"{path}: {short(value)} must be an object ({shape.name})")
            return
        members = {_normal(m): m for m in shape.members}
        given: set[str] = set()
        for key, item in value.items():
            dynamic = key.endswith(".$")
            name = key[:-2] if dynamic else key
            member = members.get(_normal(name))
            if member is None:
                problems.append(
                    f"{path}.{name}: not a member of {shape.name}{hint(name, shape.members)}"
                )
                continue
            given.add(member)
            if dynamic:
                if not isinstance(item, str) or not (item.startswith(("$", "States."))):
                    problems.append(f"{path}.{key}: {short(item)} must be a path or an intrinsic")
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
            problems.append(f"{path}: {short(value)} must be a list")
            return
        for i, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, Mapping):
            problems.append(f"{path}: {short(value)} must be an object")
            return
        for key, item in value.items():
            if isinstance(key, str) and key.endswith(".$"):
                continue
            _check_shape(item, shape.value, f"{path}.{key}", problems)
    elif kind in ("string", "timestamp"):
        if not isinstance(value, str):
            problems.append(f"{path}: {short(value)} must be a string")
        elif shape.enum and value not in shape.enum:
            problems.append(
                f"{path}: {value!r} is not one of {', '.join(shape.enum[:12])}"
                f"{', ...' if len(shape.enum) > 12 else ''}"
            )
    elif kind in ("integer", "long"):
        if not is_type(value, "integer"):
            problems.append(f"{path}: {short(value)} must be an integer")
    elif kind in ("float", "double"):
        if not is_type(value, "number"):
            problems.append(f"{path}: {short(value)} must be a number")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: {short(value)} must be true or false")
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
    return [
        f"statelint: {problem}"
        for problem in Linter.validate(dict(document))
        if not _distributed_map_field(problem)
    ]


def _distributed_map_field(problem: str) -> bool:
    match = _STATELINT_FIELD.match(problem)
    return match is not None and match.group(1) in DISTRIBUTED_MAP_FIELDS


__all__ = ["MAX_STATE_NAME_LENGTH", "structure_problems", "validate_config", "validate_definition"]
