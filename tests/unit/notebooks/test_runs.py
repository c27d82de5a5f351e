"""Editing the SDK workflow, progress/history tables, run records and AWS deployment."""

from __future__ import annotations

import json

import pytest

from workflow.definition import build_workflow
from workflow.errors import ValidationError
from workflow.notebook import (
    NotebookError,
    check,
    compare_workflows,
    deploy,
    document_of,
    history_rows,
    insert_step_after,
    last_run,
    model_artifact,
    remember_run,
    require_success,
    run_summary,
    state_names,
    state_rows,
    state_visits,
    with_client,
)
from workflow.notebook.authoring import graph_png
from workflow.notebook.local_api import LocalStepFunctions


def _pass(name: str = "RecordModel"):
    from stepfunctions.steps import Pass

    return Pass(name, parameters={"ModelName.$": "$.ModelName"}, result_path="$.Record")


def test_insert_step_after_rewires_the_graph_and_stays_valid(make_session):
    config = make_session().config
    original = build_workflow(config)
    edited = insert_step_after(build_workflow(config), "CreateModel", _pass())
    states = document_of(edited)["States"]
    following = document_of(original)["States"]["CreateModel"]["Next"]
    assert states["CreateModel"]["Next"] == "RecordModel"
    assert states["RecordModel"]["Next"] == following
    assert "RecordModel" in check(edited)
    diff = compare_workflows(original, edited)
    assert ["RecordModel", "added", "Pass"] in [list(r) for r in diff.rows]
    assert any(r[0] == "CreateModel" and r[1] == "changed: Next" for r in diff.rows)


def test_insert_step_after_refuses_unknown_taken_and_choice_states(make_session):
    workflow = build_workflow(make_session().config)
    with pytest.raises(NotebookError, match="there is no state 'Nope' to insert after"):
        insert_step_after(workflow, "Nope", _pass())
    with pytest.raises(NotebookError, match="a state named 'Train' exists already"):
        insert_step_after(workflow, "CreateModel", _pass("Train"))
    with pytest.raises(NotebookError, match="'QualityGate' is a Choice state"):
        insert_step_after(workflow, "QualityGate", _pass())


def test_reconfigured_workflow_drops_the_approval_and_changes_the_instance(make_session):
    session = make_session()
    variant = session.reconfigure(
        {"approval.enabled": False, "training.instance_type": "ml.g5.2xlarge"}
    )
    before, after = build_workflow(session.config), build_workflow(variant.config)
    assert "RequestApproval" in state_names(before)
    assert "RequestApproval" not in state_names(after)
    train = document_of(after)["States"]["Train"]["Parameters"]["ResourceConfig"]
    assert train["InstanceType"] == "ml.g5.2xlarge"
    rows = {r[0]: r[1] for r in compare_workflows(before, after).rows}
    assert rows["RequestApproval"] == "removed"
    assert "Parameters" in rows["Train"]


def test_check_raises_every_problem(make_session):
    from stepfunctions.steps import Task

    bad = Task("BadTask", resource="arn:aws:states:::sagemaker:createModel",
               parameters={"ModelNam": "x"}, result_path="$.Bad")  # fmt: skip
    edited = insert_step_after(build_workflow(make_session().config), "CreateModel", bad)
    with pytest.raises(ValidationError, match="BadTask"):
        check(edited, source="edited")


def test_graph_png_never_overwrites(make_session, tmp_path):
    workflow = build_workflow(make_session().config)
    first = graph_png(workflow, tmp_path / "graphs")
    second = graph_png(workflow, tmp_path / "graphs")
    assert first != second
    for path in (first, second):
        assert path.read_bytes().startswith(b"\x89PNG")


def test_state_visits_rows_and_history(make_events):
    events = make_events([
        (0, "ExecutionStarted", None),
        (0, "ChoiceStateEntered", "CheckImage"),
        (0.5, "ChoiceStateExited", "CheckImage"),
        (1, "TaskStateEntered", "Train"),
        (1.5, "TaskScheduled", None),
        (4, "TaskFailed", None),
        (4, "TaskStateExited", "Train"),
        (5, "WaitStateEntered", "Poll"),
        (6, "WaitStateExited", "Poll"),
        (6, "WaitStateEntered", "Poll"),
        (8, "WaitStateExited", "Poll"),
        (8, "TaskStateEntered", "Deploy"),
    ])  # fmt: skip
    visits = state_visits(events)
    assert [(v.name, v.start, v.seconds, v.status) for v in visits] == [
        ("CheckImage", 0.0, 0.5, "succeeded"),
        ("Train", 1.0, 3.0, "caught"),
        ("Poll", 5.0, 1.0, "succeeded"),
        ("Poll", 6.0, 2.0, "succeeded"),
        ("Deploy", 8.0, None, "running"),
    ]
    rows = {r[0]: r for r in state_rows(events).rows}
    assert rows["Poll"] == ["Poll", 2, 5.0, 3.0, "succeeded"]
    assert rows["Train"][4] == "caught"
    assert rows["Deploy"][3] is None
    history = history_rows(events)
    assert len(history.rows) == len(events)
    assert history.rows[5][2:] == ["TaskFailed", "Train", "Boom: it broke"]
    assert history.rows[4][4] == "sagemaker:createTrainingJob.sync"
    assert state_visits([]) == [] and history_rows([]).rows == []


def test_retried_and_failed_visits(make_events):
    events = make_events([
        (0, "ExecutionStarted", None),
        (1, "TaskStateEntered", "Train"),
        (2, "TaskFailed", None),
        (3, "TaskSucceeded", None),
        (4, "TaskStateExited", "Train"),
        (5, "TaskStateEntered", "Deploy"),
        (6, "TaskFailed", None),
        (7, "ExecutionFailed", None),
    ])  # fmt: skip
    assert [v.status for v in state_visits(events)] == ["retried", "failed"]
    assert [r[4] for r in state_rows(events).rows] == ["retried", "failed"]


def test_require_success_names_the_failed_state(make_events):
    events = make_events([
        (0, "ExecutionStarted", None),
        (1, "TaskStateEntered", "Train"),
        (2, "TaskFailed", None),
    ])  # fmt: skip
    require_success("SUCCEEDED", events)
    with pytest.raises(NotebookError, match="ended FAILED in state Train with Boom: it broke"):
        require_success("FAILED", events)


def test_run_summary_reads_metrics_and_artifact():
    output = {
        "Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m/model.tar.gz"}},
        "Metrics": {"Payload": {"segm_mAP": 0.25, "bbox_mAP": 0.5}},
        "EndpointName": "ep",
    }
    rows = dict(map(tuple, run_summary("SUCCEEDED", output).rows))
    assert rows["model artifact"] == "s3://b/m/model.tar.gz"
    assert rows["metric segm_mAP"] == 0.25 and rows["endpoint"] == "ep"


def test_remember_and_read_the_last_run(make_session):
    session = make_session()
    with pytest.raises(
        NotebookError, match=r"no run is recorded in .*run notebooks/02_workflow\.py"
    ):
        last_run(session)
    inputs = {"JobName": "job-1", "EndpointName": "ep", "TestData": "s3://b/test/"}
    path = remember_run(session, "arn:aws:states:x:1:execution:sm:job-1", "SUCCEEDED", inputs,
                        {"ok": True}, "http://127.0.0.1:1")  # fmt: skip
    record = last_run(session)
    assert record["endpoint_name"] == "ep" and record["test_data"] == "s3://b/test/"
    assert record["endpoint_url"] == "http://127.0.0.1:1" and record["output"] == {"ok": True}
    with pytest.raises(FileExistsError):  # a record is never overwritten
        remember_run(session, "arn", "SUCCEEDED", inputs, {}, None)
    remember_run(session, "arn", "FAILED", {**inputs, "JobName": "job-2"}, {}, None)
    assert last_run(session)["status"] == "FAILED"
    assert json.loads(path.read_text())["status"] == "SUCCEEDED"
    assert model_artifact(record) == ""
    trained = {"output": {"Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"}}}}
    assert model_artifact(trained) == "s3://b/m.tar.gz"
    assert model_artifact({"model_artifact": "s3://b/n.tar.gz"}) == "s3://b/n.tar.gz"


def test_local_step_functions_needs_local_mode(make_session):
    with pytest.raises(NotebookError, match="LocalStepFunctions needs mode 'local', not 'aws'"):
        LocalStepFunctions(make_session("aws"))


def test_deploy_creates_then_updates_through_the_sdk_workflow(make_session):
    import boto3
    from moto import mock_aws

    config = make_session().config
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        workflow = with_client(build_workflow(config), client)
        created = deploy(workflow)
        assert created.action == "created"
        assert workflow.state_machine_arn == created.arn
        again = with_client(insert_step_after(build_workflow(config), "CreateModel", _pass()),
                            client)  # fmt: skip
        updated = deploy(again)
        assert (updated.action, updated.arn) == ("updated", created.arn)
        deployed = client.describe_state_machine(stateMachineArn=created.arn)["definition"]
        assert "RecordModel" in json.loads(deployed)["States"]
        assert deploy(again).action == "unchanged"


def test_a_long_history_keeps_its_end_where_the_outcome_is():
    from workflow.notebook.progress import HISTORY_TAIL, history_rows

    events = [
        {"id": i, "timestamp": 1000 + i, "type": "PassStateEntered",
         "stateEnteredEventDetails": {"name": "Poll"}}
        for i in range(1, 250)
    ]  # fmt: skip
    events.append({"id": 250, "timestamp": 1250, "type": "ExecutionSucceeded"})
    rows = history_rows(events, limit=200).rows
    assert len(rows) == 201  # 180 first events, one marker row, the last 20
    assert rows[0][0] == 1 and rows[179][0] == 180
    assert rows[180] == ["...", "", "50 events left out", "", ""]
    assert [r[0] for r in rows[-HISTORY_TAIL:]] == list(range(231, 251))
    assert rows[-1][2] == "ExecutionSucceeded"
    assert len(history_rows(events[:50], limit=200).rows) == 50  # short: all of it
