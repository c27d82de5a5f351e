from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow.local.clients import LocalClients
from workflow.local.sns import Outbox
from workflow.local.store import LocalStore


def test_outbox_appends_json_lines_and_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = Outbox(tmp_path)
    outbox.publish("arn:aws:sns:us-east-1:1:topic", "hello\nworld", subject="Hi")
    outbox.publish("arn:aws:sns:us-east-1:1:topic", "second")
    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(line)["Message"] for line in lines] == ["hello\nworld", "second"]
    assert outbox.messages()[0]["Subject"] == "Hi"
    err = capsys.readouterr().err
    assert "[sns] topic: Hi" in err and "[sns] topic: second" in err


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def send_task_success(self, token: str, output: Any) -> None:
        if token == "gone":
            raise KeyError("TaskDoesNotExist")
        self.calls.append(("success", token, output))

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        self.calls.append(("failure", token, error, cause))

    def send_task_heartbeat(self, token: str) -> None:
        self.calls.append(("heartbeat", token))


def make_clients(tmp_path: Path, engine: Any = None) -> LocalClients:
    return LocalClients(
        LocalStore(tmp_path),
        Outbox(tmp_path, echo=False),
        engine=engine,
        secrets={"key": "s" * 40},
        parameters={"hp": '{"epochs": "2"}'},
    )


def test_s3_client(tmp_path: Path) -> None:
    s3 = make_clients(tmp_path)("s3")
    s3.put_object(Bucket="b", Key="a/x.json", Body=b'{"v": 1}')
    s3.put_object(Bucket="b", Key="a/y.txt", Body="text")
    assert json.loads(s3.get_object(Bucket="b", Key="a/x.json")["Body"].read()) == {"v": 1}
    assert s3.head_object(Bucket="b", Key="a/y.txt")["ContentLength"] == 4
    page = s3.list_objects_v2(Bucket="b", Prefix="a/", MaxKeys=1)
    assert [c["Key"] for c in page["Contents"]] == ["a/x.json"] and page["IsTruncated"]
    rest = s3.list_objects_v2(
        Bucket="b", Prefix="a/", ContinuationToken=page["NextContinuationToken"]
    )
    assert [c["Key"] for c in rest["Contents"]] == ["a/y.txt"] and not rest["IsTruncated"]
    assert "Contents" not in s3.list_objects_v2(Bucket="b", Prefix="zzz/")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="b", Key="missing")
    assert info.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="b", Key="a/x.json", Body=b"again")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"


def test_secrets_ssm_sns(tmp_path: Path) -> None:
    clients = make_clients(tmp_path)
    assert clients("secretsmanager").get_secret_value(SecretId="key")["SecretString"] == "s" * 40
    assert clients("ssm").get_parameter(Name="hp")["Parameter"]["Value"] == '{"epochs": "2"}'
    with pytest.raises(ClientError) as info:
        clients("ssm").get_parameter(Name="nope")
    assert info.value.response["Error"]["Code"] == "ParameterNotFound"
    with pytest.raises(ClientError) as info:
        clients("secretsmanager").get_secret_value(SecretId="nope")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert clients("sns").publish(TopicArn="arn:t", Message="m", Subject="s")["MessageId"]
    assert Outbox(tmp_path).messages()[0]["Source"] == "lambda"
    with pytest.raises(KeyError, match="no 'ec2' client"):
        clients("ec2")


def test_stepfunctions_client_forwards_tokens(tmp_path: Path) -> None:
    engine = FakeEngine()
    sfn = make_clients(tmp_path, engine)("stepfunctions")
    sfn.send_task_success(taskToken="t", output='{"Approved": true}')
    sfn.send_task_failure(taskToken="t", error="Rejected", cause="no")
    sfn.send_task_heartbeat(taskToken="t")
    assert engine.calls == [
        ("success", "t", {"Approved": True}),
        ("failure", "t", "Rejected", "no"),
        ("heartbeat", "t"),
    ]
    with pytest.raises(ClientError) as info:
        sfn.send_task_success(taskToken="gone", output="{}")
    assert info.value.response["Error"]["Code"] == "TaskDoesNotExist"
