"""The aws-mode paths of the notebook helpers, against moto (no account, no network)."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.notebook import aws_execution_input, dataset_splits, follow, load_split


@pytest.fixture
def s3_data(coco_root):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data-bucket")
        for path in (coco_root / "train").iterdir():
            s3.put_object(
                Bucket="data-bucket", Key=f"set/train/{path.name}", Body=path.read_bytes()
            )
        yield "s3://data-bucket/set/"


def test_aws_splits_are_read_from_s3(make_session, s3_data, coco_root):
    session = make_session("aws")
    split = load_split(session, s3_data + "train")
    assert split.location == "s3://data-bucket/set/train/"
    image = split.images[0]
    assert split.image_bytes(image) == (coco_root / "train" / image["file_name"]).read_bytes()
    assert list(dataset_splits(session, s3_data)) == ["train"]


def test_aws_execution_input_uses_the_configured_bucket(make_session):
    session = make_session(
        "aws",
        overrides={"s3.bucket": "my-bucket", "gate.threshold": 0.6, "local.gate_threshold": 0.1},
    )
    document = aws_execution_input(session, commit="abc1234", image_uri="1.dkr.ecr/x:1")
    assert document["CommitId"] == "abc1234" and document["ImageUri"] == "1.dkr.ecr/x:1"
    assert document["GateThreshold"] == 0.6  # AWS runs: gate.threshold
    assert document["TrainingData"] == "s3://my-bucket/mask-r-cnn/data/train/"


class _Execution:
    """Two polls: running with the first events, then succeeded with all of them."""

    execution_arn = "arn:aws:states:us-east-1:1:execution:sm:run"

    def __init__(self, make_events: Any) -> None:
        self.polls = 0
        self.events = make_events([
            (0, "ExecutionStarted", None),
            (1, "TaskStateEntered", "Train"),
            (2, "TaskFailed", None),
            (3, "TaskStateExited", "Train"),
            (4, "ExecutionSucceeded", None),
        ])  # fmt: skip

    def describe(self) -> dict[str, Any]:
        self.polls += 1
        return {"status": "RUNNING" if self.polls == 1 else "SUCCEEDED"}

    def list_events(self, max_items: int = 100) -> list[dict[str, Any]]:
        return self.events[:2] if self.polls == 1 else self.events


def test_follow_prints_each_event_once_until_the_end(make_events):
    out = io.StringIO()
    assert follow(_Execution(make_events), poll_seconds=0, stream=out) == "SUCCEEDED"
    assert out.getvalue().splitlines() == [
        "  > Train",
        "  ! TaskFailed: Boom: it broke",  # the one progress line (workflow.history)
        "  < Train",
        "execution SUCCEEDED",
    ]


def test_follow_gives_up_after_the_timeout(make_events):
    from workflow.notebook import NotebookError

    class Stuck(_Execution):
        def describe(self) -> dict[str, Any]:
            return {"status": "RUNNING"}

    with pytest.raises(NotebookError, match="still runs after 0 s"):
        follow(Stuck(make_events), poll_seconds=0, stream=io.StringIO(), timeout=0)
