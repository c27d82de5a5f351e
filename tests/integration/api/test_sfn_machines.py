"""boto3 against the local API: state machines, versions, aliases, tags, validation, errors.

Expected shapes and codes are AWS's, from the Step Functions API reference
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_Operations.html).
"""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "Pass Result", "End": True}}}


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_describe_update_delete(served, make_machine):
    sfn = served.client()
    arn = make_machine(PASS, name="Case-Kept_1")
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachine.html
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:Case-Kept_1"
    assert json.loads(described["definition"]) == PASS
    assert (described["status"], described["type"], described["roleArn"]) == (
        "ACTIVE",
        "STANDARD",
        served.role,
    )
    # An identical CreateStateMachine is idempotent; a different one is refused.
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html
    again = sfn.create_state_machine(
        name="Case-Kept_1", definition=json.dumps(PASS), roleArn=served.role
    )
    assert again["stateMachineArn"] == arn
    other = {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(
            name="Case-Kept_1", definition=json.dumps(other), roleArn=served.role
        )
    assert _code(exc) == "StateMachineAlreadyExists"
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_UpdateStateMachine.html
    updated = sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps(other), publish=True
    )
    assert updated["stateMachineVersionArn"] == f"{arn}:1"
    assert updated["revisionId"] != described["revisionId"]
    version = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert json.loads(version["definition"]) == other
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine(stateMachineArn=arn)
    assert _code(exc) == "StateMachineDoesNotExist"


def test_list_state_machines_pages(served, make_machine):
    sfn = served.client()
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        make_machine(PASS, name=name)
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListStateMachines.html
    first = sfn.list_state_machines(maxResults=2)
    assert [m["name"] for m in first["stateMachines"]] == names[:2]
    second = sfn.list_state_machines(maxResults=2, nextToken=first["nextToken"])
    assert [m["name"] for m in second["stateMachines"]] == names[2:4]
    pages = sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2})
    assert [m["name"] for p in pages for m in p["stateMachines"]] == names
    with pytest.raises(ClientError) as exc:
        sfn.list_state_machines(nextToken="not-a-token")
    assert _code(exc) == "InvalidToken"


def test_versions_aliases_and_tags(served, make_machine):
    sfn = served.client()
    arn = make_machine(PASS, tags=[{"key": "team", "value": "ml"}])
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_PublishStateMachineVersion.html
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    assert v1 == f"{arn}:1"
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [v1]
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachineAlias.html
    alias = sfn.create_state_machine_alias(
        name="prod", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )["stateMachineAliasArn"]
    assert alias == f"{arn}:prod"
    started = sfn.start_execution(stateMachineArn=alias)
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["stateMachineAliasArn"] == alias
    assert described["stateMachineVersionArn"] == v1
    with pytest.raises(ClientError) as exc:
        sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert _code(exc) == "ConflictException"
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_UpdateStateMachineAlias.html
    sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps(PASS).replace("Pass R", "R")
    )
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 50},
            {"stateMachineVersionArn": v2, "weight": 50},
        ],
        description="half and half",
    )
    described_alias = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert described_alias["description"] == "half and half"
    assert [r["weight"] for r in described_alias["routingConfiguration"]] == [50, 50]
    listed = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [alias]
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    assert sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"] == []
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert [
        v["stateMachineVersionArn"]
        for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    ] == [v2]
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_TagResource.html
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "stage", "value": "dev"}])
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "stage", "value": "dev"}]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        # An unknown state Type: InvalidDefinition (never an empty code).
        ({"definition": json.dumps({"StartAt": "A", "States": {"A": {"Type": "Bogus"}}})},
         "InvalidDefinition"),
        ({"definition": "{not json"}, "InvalidDefinition"),
        ({"name": "has space"}, "InvalidName"),
        ({"roleArn": "not-an-arn"}, "InvalidArn"),
        ({"type": "FAST"}, "ValidationException"),
    ],
)  # fmt: skip
def test_create_errors(served, kwargs, code):
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html#API_CreateStateMachine_Errors
    request = {"name": "bad", "definition": json.dumps(PASS), "roleArn": served.role, **kwargs}
    with pytest.raises(ClientError) as exc:
        served.client().create_state_machine(**request)
    assert _code(exc) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invalid_arn_and_unknown_operation_are_json(served):
    with pytest.raises(ClientError) as exc:
        served.client().describe_state_machine(stateMachineArn="arn:aws:sns:x")
    assert _code(exc) == "InvalidArn"
    answer = requests.post(
        served.url,
        data="{}",
        headers={"X-Amz-Target": "AWSStepFunctions.DescribeMapRun"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["__type"].endswith("#UnknownOperationException")
    answer = requests.post(
        served.url, data="{", headers={"X-Amz-Target": "AWSStepFunctions.ListStateMachines"},
        timeout=10,
    )  # fmt: skip
    assert answer.headers["x-amzn-ErrorType"].startswith("SerializationException")


def test_validate_state_machine_definition(served):
    sfn = served.client()
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html
    assert sfn.validate_state_machine_definition(definition=json.dumps(PASS))["result"] == "OK"
    broken = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "Missing"}, "B": {"Type": "Bogus"}},
    }
    answer = sfn.validate_state_machine_definition(definition=json.dumps(broken))
    assert answer["result"] == "FAIL"
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html
    assert {(d["severity"], d["code"]) for d in answer["diagnostics"]} == {
        ("ERROR", "MISSING_TRANSITION_TARGET"),
        ("ERROR", "SCHEMA_VALIDATION_FAILED"),
        ("ERROR", "MISSING_END_STATE"),
    }
    assert {"/States/A/Next", "/States/B"} <= {d["location"] for d in answer["diagnostics"]}
    bad_json = sfn.validate_state_machine_definition(definition="{")
    assert bad_json["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"
