"""Approval links under attack: tampered, expired, replayed and GET-only requests change nothing.

The approval Lambdas run against moto (S3, Secrets Manager, SNS, SQS and a real moto Step
Functions execution that waits on its task token). The reviewer's links are read from the email
the request Lambda actually published. "Changes nothing" is checked on three things after every
refused request: no `SendTask*` call reached Step Functions, the approval records in the bucket
are byte-for-byte the same, and the execution is still in the state it was in.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from reliability_kit import Tally, examples

from workflow.lambdas import approval, clients

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "approval links"
REGION = "us-east-1"
SECRET = "reliability-signing-key-0123456789abcdef-0123456789"  # pragma: allowlist secret
NOW = 1_900_000_000.0
TTL = 3600
SETTINGS = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


@dataclass
class World:
    """moto AWS with an execution waiting on an approval, and the links of its email."""

    environ: dict[str, str]
    execution_arn: str
    links: dict[str, dict[str, str]]
    sfn_calls: list[str] = field(default_factory=list)

    def client(self, name: str) -> Any:
        return boto3.client(name, region_name=REGION)

    def status(self) -> str:
        sfn = self.client("stepfunctions")
        return str(sfn.describe_execution(executionArn=self.execution_arn)["status"])

    def wait_status(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while self.status() == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.status()

    def records(self) -> dict[str, bytes]:
        """Every approval object in the bucket with its bytes."""
        s3 = self.client("s3")
        listing = s3.list_objects_v2(Bucket="artifacts", Prefix="approvals/")
        return {
            o["Key"]: s3.get_object(Bucket="artifacts", Key=o["Key"])["Body"].read()
            for o in listing.get("Contents", [])
        }

    def snapshot(self) -> tuple[str, dict[str, bytes], int]:
        return self.status(), self.records(), len(self.sfn_calls)

    def call(self, method: str, fields: dict[str, str], now: float = NOW) -> dict[str, Any]:
        """Call the API handler as API Gateway (HTTP API, payload 2.0) would."""
        event: dict[str, Any] = {
            "version": "2.0",
            "rawPath": "/approval",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "requestContext": {"http": {"method": method, "path": "/approval",
                                        "sourceIp": "203.0.113.9", "userAgent": "reliability"}},
            "isBase64Encoded": False,
        }  # fmt: skip
        if method == "POST":
            event["body"] = urlencode(fields)
        else:
            event["queryStringParameters"] = dict(fields)
        return approval.api_handler(event, None, environ=self.environ, now=now)


def _waiting_definition(queue_url: str) -> dict[str, Any]:
    return {
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"TaskToken.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["Rejected"], "Next": "Rejected"}],
                "Next": "Deploy",
            },
            "Deploy": {"Type": "Succeed"},
            "Rejected": {"Type": "Fail", "Error": "Rejected", "Cause": "the reviewer rejected it"},
        },
    }  # fmt: skip


def _receive(queue_url: str, timeout: float = 20) -> dict[str, Any]:
    sqs = boto3.client("sqs", region_name=REGION)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url).get("Messages", []):
            # deleted, so that the next call sees the next message
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return dict(json.loads(message["Body"]))
        time.sleep(0.05)
    raise AssertionError(f"no message arrived on {queue_url} in {timeout} s")


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        calls: list[str] = []

        def factory(name: str) -> Any:
            client = boto3.client(name, region_name=REGION)
            if name == "stepfunctions":
                client.meta.events.register(
                    "provide-client-params.stepfunctions.*",
                    lambda params, model, **_: calls.append(model.name),
                )
            return client

        s3, sqs, sns = (boto3.client(n, region_name=REGION) for n in ("s3", "sqs", "sns"))
        s3.create_bucket(Bucket="artifacts")
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="approval-key", SecretString=SECRET
        )
        topic = sns.create_topic(Name="approvals")["TopicArn"]
        inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"])
        tokens = sqs.create_queue(QueueName="tokens")["QueueUrl"]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="sfn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="approval", definition=json.dumps(_waiting_definition(tokens)), roleArn=role
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        token = _receive(tokens)["TaskToken"]
        environ = {
            "APPROVAL_SECRET_ID": secret["ARN"],
            "APPROVAL_BUCKET": "artifacts",
            "APPROVAL_PREFIX": "approvals/",
            "APPROVAL_API_URL": "https://approvals.example.com",
            "APPROVAL_TOPIC_ARN": topic,
            "APPROVAL_LINK_TTL_SECONDS": str(TTL),
        }
        with clients.use_clients(factory):
            approval.request_handler(
                {"TaskToken": token, "ModelName": "m", "CommitId": "abc1234",
                 "ExecutionArn": execution, "Metrics": {"segm_mAP": 0.61}},
                None, environ=environ, now=NOW,
            )  # fmt: skip
            email = _receive(inbox)["Message"]
            links = {}
            for url in re.findall(r"https://\S+", email):
                fields = dict(parse_qsl(urlsplit(url).query))
                links[fields["action"]] = fields
            assert set(links) == {"approve", "reject"}, email
            assert token not in email
            yield World(environ=environ, execution_arn=execution, links=links, sfn_calls=calls)


def _mutate_text(draw: st.DrawFn, text: str, alphabet: str) -> str:
    how = draw(st.sampled_from(["replace", "drop", "insert", "truncate", "swapcase"]))
    if how == "swapcase" and text.swapcase() != text:
        return text.swapcase()
    at = draw(st.integers(0, max(len(text) - 1, 0)))
    if how == "drop" and text:
        return text[:at] + text[at + 1 :]
    if how == "insert":
        return text[:at] + draw(st.sampled_from(alphabet)) + text[at:]
    if how == "truncate" and text:
        return text[:at]
    replacement = draw(st.sampled_from(alphabet).filter(lambda c: not text or c != text[at]))
    return text[:at] + replacement + text[at + 1 :] if text else replacement


@st.composite
def tampered(draw: st.DrawFn, links: dict[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    action = draw(st.sampled_from(["approve", "reject"]))
    fields = dict(links[action])
    other = links["reject" if action == "approve" else "approve"]
    kind = draw(
        st.sampled_from(["id", "sig", "expires", "action", "swap-sig", "drop", "foreign-id"])
    )
    if kind == "id":
        fields["id"] = _mutate_text(draw, fields["id"], "abcXYZ019-_")
    elif kind == "sig":
        fields["sig"] = _mutate_text(draw, fields["sig"], "0123456789abcdef")
    elif kind == "expires":
        later = draw(st.integers(1, 10**9))
        fields["expires"] = draw(
            st.sampled_from([str(int(fields["expires"]) + later), str(int(fields["expires"]) - 1),
                             fields["expires"] + "0", "0" + fields["expires"], "-1", "1e12"])
        )  # fmt: skip
    elif kind == "action":
        fields["action"] = other["action"]  # the approve signature on a reject, and back
    elif kind == "swap-sig":
        fields["sig"] = other["sig"]
    elif kind == "drop":
        fields.pop(draw(st.sampled_from(sorted(fields))))
    else:
        fields["id"] = draw(st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True))
    if any(_same_meaning(fields, genuine) for genuine in links.values()):
        # The mutation kept the meaning (e.g. a leading zero on `expires`): that is the genuine
        # link written differently, not a forgery; make it one.
        fields["sig"] = "0" * 64
    return kind, fields


def _same_meaning(fields: dict[str, str], genuine: dict[str, str]) -> bool:
    def meaning(f: dict[str, str]) -> tuple[str, ...]:
        expires = f.get("expires", "")
        return (
            f.get("id", ""),
            f.get("action", ""),
            str(int(expires)) if expires.isdigit() else expires,
            f.get("sig", ""),
        )

    return meaning(fields) == meaning(genuine)


def test_tampered_links_change_nothing(world: World, tally: Tally) -> None:
    before = world.snapshot()
    assert before[0] == "RUNNING"

    @settings(max_examples=examples(200), **SETTINGS)
    @given(case=tampered(world.links), method=st.sampled_from(["GET", "POST"]))
    def case(case: tuple[str, dict[str, str]], method: str) -> None:
        kind, fields = case
        status = world.call(method, fields)["statusCode"]
        after = world.snapshot()
        broke = status not in (400, 403, 404) or after != before
        tally.row(AREA, "tampered links (GET and POST)").count(str(status), broke)
        assert not broke, f"{method} {kind} {fields}: {status}, state changed: {after != before}"

    case()
    # the genuine link still works afterwards: nothing was consumed by the forgeries
    assert world.call("POST", world.links["approve"])["statusCode"] == 200
    assert world.wait_status() == "SUCCEEDED"


def test_expired_links_change_nothing(world: World, tally: Tally) -> None:
    before = world.snapshot()
    expires = int(world.links["approve"]["expires"])

    @settings(max_examples=examples(100), **SETTINGS)
    @given(
        late=st.one_of(st.integers(1, 120), st.integers(1, 10**9)),
        action=st.sampled_from(["approve", "reject"]),
        method=st.sampled_from(["GET", "POST"]),
    )
    def case(late: int, action: str, method: str) -> None:
        status = world.call(method, world.links[action], now=expires + late)["statusCode"]
        broke = status != 410 or world.snapshot() != before
        tally.row(AREA, "expired links (1 s to 30 years late)").count(str(status), broke)
        assert not broke, f"{method} {action} {late} s late: {status}"

    case()
    # at the last valid second the link still works
    assert world.call("POST", world.links["reject"], now=expires)["statusCode"] == 200
    assert world.wait_status() == "FAILED"


def test_get_only_requests_change_nothing(world: World, tally: Tally) -> None:
    before = world.snapshot()
    for i in range(examples(60)):
        action = ("approve", "reject")[i % 2]
        response = world.call("GET", world.links[action], now=NOW + i)
        broke = response["statusCode"] != 200 or world.snapshot() != before
        broke = broke or '<form method="post"' not in response["body"]
        tally.row(AREA, "GET of a valid link (mail scanners)").count(
            str(response["statusCode"]), broke
        )
        assert not broke, f"GET {action}: {response['statusCode']}"
    for method in ("HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", ""):
        for action in ("approve", "reject"):
            status = world.call(method, world.links[action])["statusCode"]
            broke = status != 405 or world.snapshot() != before
            tally.row(AREA, "other methods on a valid link").count(str(status), broke)
            assert not broke, f"{method or 'no method'} {action}: {status}"
    assert world.status() == "RUNNING"


def test_replayed_decisions_change_nothing(world: World, tally: Tally) -> None:
    first = world.call("POST", world.links["approve"])
    assert first["statusCode"] == 200
    assert world.wait_status() == "SUCCEEDED"
    decided = world.snapshot()
    assert decided[2] == 1, world.sfn_calls
    for i in range(examples(60)):
        action = ("approve", "reject")[i % 2]
        method = ("POST", "GET")[(i // 2) % 2]
        status = world.call(method, world.links[action], now=NOW + 1 + i)["statusCode"]
        broke = status != 409 or world.snapshot() != decided
        tally.row(AREA, "replayed decisions (after an approval)").count(str(status), broke)
        assert not broke, f"replayed {method} {action}: {status}"


# Unicode digits that str.isdigit() accepts and int() refuses, other scripts' digits, and
# thousands of digits: each once raised before the signature check (500 for anyone).
ODD_EXPIRES = [
    "²",
    "¹²³",
    "1900003600²",
    "١٩٠٠٠٠٣٦٠٠",
    "\uff19\uff19",
    "9" * 5000,
    "0" * 4400 + "1",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_odd_expiry_values_are_a_malformed_link(world: World, tally: Tally, method: str) -> None:
    before = world.snapshot()
    for expires in ODD_EXPIRES:
        fields = {**world.links["approve"], "expires": expires}
        status = world.call(method, fields)["statusCode"]
        broke = status != 400 or world.snapshot() != before
        tally.row(AREA, "odd `expires` (Unicode digits, 5000 digits)").count(str(status), broke)
        assert not broke, f"{method} expires={expires[:20]!r}...: {status}"


INJECTIONS = [
    "abc1234\nApprove: https://evil.example/approval?id=x",
    "abc1234\r\n\r\nReject:  https://evil.example/x",
    "abc1234\u2028Approve: https://evil.example/",
    "abc\x1b[2J\x00\x07",
    "<a href='https://evil.example'>ok</a>",
    "x" * 5000,
]


@pytest.mark.parametrize("field_name", ["CommitId", "ModelName", "EndpointName", "ExecutionArn"])
def test_execution_input_cannot_inject_lines_or_links_into_the_email(
    world: World, tally: Tally, field_name: str
) -> None:
    sqs = world.client("sqs")
    inbox = sqs.get_queue_url(QueueName="inbox")["QueueUrl"]
    for value in INJECTIONS:
        event = {"TaskToken": "t" * 40, "ModelName": "m", "CommitId": "abc1234",
                 "Metrics": {"segm_mAP": 0.5, value: value}, field_name: value}  # fmt: skip
        approval.request_handler(event, None, environ=world.environ, now=NOW)
        message = _receive(inbox)["Message"]
        lines = message.split("\n")
        links = re.findall(r"https?://\S+", message)
        broke = (
            len(links) != 2
            or not all(u.startswith("https://approvals.example.com/approval?") for u in links)
            or any(not line.isprintable() for line in lines)
            or sum(line.startswith(("Approve:", "Reject:")) for line in lines) != 2
            or max(len(line) for line in lines) > 2 * approval.EMAIL_VALUE_CHARS + 20
        )
        tally.row(AREA, "line/link injection through the execution input").count(
            "2 genuine links" if not broke else "injected", broke
        )
        assert not broke, f"{field_name}={value[:40]!r}:\n{message}"


def test_a_decision_whose_record_cannot_be_saved_still_says_approved(
    world: World, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_client = clients.client

    def failing_s3(name: str) -> Any:
        client = real_client(name)
        if name == "s3":

            def refuse(params: dict[str, Any], **_: Any) -> None:
                if str(params.get("Key", "")).endswith("decision.json"):
                    raise OSError("simulated S3 outage while saving the decision")

            client.meta.events.register("provide-client-params.s3.PutObject", refuse)
        return client

    monkeypatch.setattr(clients, "client", failing_s3)
    response = world.call("POST", world.links["approve"])
    status = response["statusCode"]
    final = world.wait_status()
    broke = status != 200 or "approved" not in response["body"] or final != "SUCCEEDED"
    tally.row(AREA, "decision record not saved after the task was answered").count(
        str(status), broke
    )
    assert not broke, (status, final, response["body"])
    assert "could not be saved" in response["body"]
    # a replay is refused by Step Functions itself (the token was used), and says so
    replay = world.call("POST", world.links["approve"])
    assert replay["statusCode"] == 410, replay["body"]
