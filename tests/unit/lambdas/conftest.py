"""Fixtures for the Lambda handler tests: moto-backed AWS and the handlers' client factory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.lambdas import clients

REGION = "us-east-1"
SECRET = "0123456789abcdef0123456789abcdef-test-signing-key"


@dataclass
class Aws:
    """moto-backed clients plus a record of every request the handlers made."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def client(self, name: str) -> Any:
        return boto3.client(name, region_name=REGION)

    def factory(self, name: str) -> Any:
        """The handlers' factory: a fresh moto-backed client that records its requests."""
        client = boto3.client(name, region_name=REGION)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append((name, model.name, dict(params)))

        client.meta.events.register("provide-client-params.*.*", record)
        return client

    def calls_of(self, service: str, operation: str) -> list[dict[str, Any]]:
        return [p for s, o, p in self.calls if s == service and o == operation]


@pytest.fixture
def aws() -> Iterator[Aws]:
    """moto for every service (Step Functions really executes) with the handlers wired to it."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        state = Aws()
        with clients.use_clients(state.factory):
            yield state


@dataclass
class ApprovalSetup:
    """Bucket, secret, topic and a waiting execution for the approval tests."""

    aws: Aws
    environ: dict[str, str]
    execution_arn: str
    token: str
    email_queue: str
    secret: bytes = SECRET.encode()

    def emails(self) -> list[dict[str, Any]]:
        """Return the SNS notifications delivered to the reviewer's (SQS) subscription."""
        sqs = self.aws.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.email_queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    def wait_for_execution(self, timeout: float = 20.0) -> dict[str, Any]:
        sfn = self.aws.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=self.execution_arn)
            if description["status"] != "RUNNING" or time.monotonic() > deadline:
                return description
            time.sleep(0.05)

    def status(self) -> str:
        sfn = self.aws.client("stepfunctions")
        return str(sfn.describe_execution(executionArn=self.execution_arn)["status"])


def _wait_definition(queue_url: str, timeout_seconds: int | None) -> dict[str, Any]:
    """A state machine that waits on a task token (delivered through SQS) like the Approve step."""
    definition: dict[str, Any] = {
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {"TaskToken.$": "$$.Task.Token"},
                },
                "ResultPath": "$.Approval",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.Error", "Next": "Nope"}],
                "Next": "Deploy",
            },
            "Deploy": {"Type": "Succeed"},
            "Nope": {"Type": "Fail", "Error": "Rejected", "Cause": "the reviewer rejected it"},
        },
    }
    if timeout_seconds is not None:
        definition["States"]["Approve"]["TimeoutSeconds"] = timeout_seconds
    return definition


@pytest.fixture
def make_approval(aws: Aws) -> Callable[..., ApprovalSetup]:
    """Factory of `ApprovalSetup`s; `timeout_seconds` sets the waiting task's TimeoutSeconds."""
    return lambda timeout_seconds=None: _make_approval(aws, timeout_seconds)


@pytest.fixture
def approval(make_approval: Callable[..., ApprovalSetup]) -> ApprovalSetup:
    """A real (moto) execution waiting on its token, plus bucket, secret and topic."""
    return make_approval()


def _make_approval(aws: Aws, timeout_seconds: int | None) -> ApprovalSetup:
    s3, sqs, sns = aws.client("s3"), aws.client("sqs"), aws.client("sns")
    s3.create_bucket(Bucket="artifacts")
    secret_arn = aws.client("secretsmanager").create_secret(
        Name="approval-key", SecretString=SECRET
    )["ARN"]
    topic = sns.create_topic(Name="approvals")["TopicArn"]
    email_queue = sqs.create_queue(QueueName="reviewer-inbox")["QueueUrl"]
    email_queue_arn = sqs.get_queue_attributes(QueueUrl=email_queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=email_queue_arn)
    token_queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    role = aws.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="approval-test",
        definition=json.dumps(_wait_definition(token_queue, timeout_seconds)),
        roleArn=role["Arn"],
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    token = ""
    while not token:
        messages = sqs.receive_message(QueueUrl=token_queue).get("Messages", [])
        if messages:
            token = json.loads(messages[0]["Body"])["TaskToken"]
        elif time.monotonic() > deadline:
            pytest.fail("the moto execution never reached its waitForTaskToken state")
        else:
            time.sleep(0.05)
    environ = {
        "APPROVAL_SECRET_ID": secret_arn,
        "APPROVAL_BUCKET": "artifacts",
        "APPROVAL_PREFIX": "approvals/",
        "APPROVAL_API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com",
        "APPROVAL_TOPIC_ARN": topic,
        "APPROVAL_LINK_TTL_SECONDS": "3600",
    }
    return ApprovalSetup(aws, environ, execution, token, email_queue)


@pytest.fixture
def http_event() -> Callable[..., dict[str, Any]]:
    """Factory of API Gateway HTTP API (payload 2.0) events."""

    def make(
        method: str, query: dict[str, str] | None = None, body: str | None = None
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": f"{method} /approval",
            "rawPath": "/approval",
            "rawQueryString": "",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "requestContext": {
                "http": {
                    "method": method,
                    "path": "/approval",
                    "sourceIp": "198.51.100.7",
                    "userAgent": "pytest",
                }
            },
            "isBase64Encoded": False,
        }
        if query is not None:
            event["queryStringParameters"] = query
        if body is not None:
            event["body"] = body
        return event

    return make
