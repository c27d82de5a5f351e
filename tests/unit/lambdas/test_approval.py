"""The approval Lambdas against moto: signed links, GET confirms, POST decides, refusals change nothing."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from workflow.lambdas import approval as lam
from workflow.lambdas.errors import BadEventError, LambdaConfigError

NOW = 1_790_000_000.0
EVENT = {
    "Metrics": {"Payload": {"bbox_mAP": 0.61, "segm_mAP": 0.55, "images": 4}},
    "ModelName": "mrcnn-abc1234-model",
    "CommitId": "abc1234",
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:m:run-1",
    "EndpointName": "mask-r-cnn",
}


def request(setup: Any, now: float = NOW, **extra: Any) -> dict[str, Any]:
    event = {**EVENT, "TaskToken": setup.token, **extra}
    return lam.request_handler(event, None, environ=setup.environ, now=now)


def links_of(setup: Any) -> dict[str, dict[str, str]]:
    """Read the email the reviewer got and return {action: query fields} of its two links."""
    (email,) = setup.emails()
    urls = re.findall(r"https://\S+", email["Message"])
    links = {}
    for url in urls:
        parts = urlsplit(url)
        assert parts.path == "/approval"
        fields = dict(parse_qsl(parts.query))
        links[fields["action"]] = fields
    assert set(links) == {"approve", "reject"}
    return links


def post(setup: Any, http_event: Any, fields: dict[str, str], now: float = NOW + 60) -> dict:
    event = http_event("POST", body=urlencode(fields))
    return lam.api_handler(event, None, environ=setup.environ, now=now)


def get(setup: Any, http_event: Any, fields: dict[str, str], now: float = NOW + 60) -> dict:
    return lam.api_handler(http_event("GET", query=fields), None, setup.environ, now)


def sfn_calls(setup: Any) -> list[dict[str, Any]]:
    return setup.aws.calls_of("stepfunctions", "SendTaskSuccess") + setup.aws.calls_of(
        "stepfunctions", "SendTaskFailure"
    )


def decision_keys(setup: Any) -> list[str]:
    listing = setup.aws.client("s3").list_objects_v2(Bucket="artifacts", Prefix="approvals/")
    return [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith("decision.json")]


def assert_unchanged(setup: Any) -> None:
    assert setup.status() == "RUNNING"
    assert sfn_calls(setup) == []
    assert decision_keys(setup) == []


def test_request_mails_signed_links_without_the_token(approval_setup_sent: Any) -> None:
    setup, result = approval_setup_sent
    (email,) = setup.emails()
    assert setup.token not in email["Message"]
    assert "segm_mAP: 0.5500" in email["Message"]
    assert "bbox_mAP: 0.6100" in email["Message"]
    assert email["Subject"] == "Approve model mrcnn-abc1234-model"
    links = {f["action"]: f for f in _links_from(email["Message"])}
    assert links["approve"]["id"] == result["ApprovalId"]
    assert int(links["approve"]["expires"]) == int(NOW) + 3600
    # The token lives only in the private bucket, under the opaque id.
    stored = setup.aws.client("s3").get_object(
        Bucket="artifacts", Key=f"approvals/{result['ApprovalId']}/request.json"
    )
    record = json.loads(stored["Body"].read())
    assert record["token"] == setup.token
    assert record["metrics"]["segm_mAP"] == 0.55


def _links_from(message: str) -> list[dict[str, str]]:
    return [dict(parse_qsl(urlsplit(u).query)) for u in re.findall(r"https://\S+", message)]


@pytest.fixture
def approval_setup_sent(approval: Any) -> tuple[Any, dict[str, Any]]:
    return approval, request(approval)


@pytest.fixture
def links(approval: Any) -> dict[str, dict[str, str]]:
    request(approval)
    return links_of(approval)


def test_get_shows_a_confirmation_form_and_changes_nothing(
    approval: Any, links: dict, http_event: Any
) -> None:
    response = get(approval, http_event, links["approve"])
    assert response["statusCode"] == 200
    body = response["body"]
    assert '<form method="post" action="/approval">' in body
    assert "Approve and deploy" in body
    assert f'value="{links["approve"]["sig"]}"' in body
    assert "0.5500" in body
    assert response["headers"]["Cache-Control"] == "no-store"
    assert approval.token not in body
    assert_unchanged(approval)


def test_post_approve_sends_task_success_and_the_execution_goes_on(
    approval: Any, links: dict, http_event: Any
) -> None:
    response = post(approval, http_event, links["approve"])
    assert response["statusCode"] == 200, response["body"]
    assert "Approved" in response["body"]
    final = approval.wait_for_execution()
    assert final["status"] == "SUCCEEDED"
    assert json.loads(final["output"])["Approval"]["Approved"] is True
    (call,) = approval.aws.calls_of("stepfunctions", "SendTaskSuccess")
    assert call["taskToken"] == approval.token
    (key,) = decision_keys(approval)
    decision = json.loads(
        approval.aws.client("s3").get_object(Bucket="artifacts", Key=key)["Body"].read()
    )
    assert decision["action"] == "approve"
    assert decision["source_ip"] == "198.51.100.7"


def test_post_reject_sends_task_failure_rejected_which_the_catch_matches(
    approval: Any, links: dict, http_event: Any
) -> None:
    response = post(approval, http_event, links["reject"])
    assert response["statusCode"] == 200
    assert "Rejected" in response["body"]
    (call,) = approval.aws.calls_of("stepfunctions", "SendTaskFailure")
    assert call["error"] == "Rejected"
    final = approval.wait_for_execution()
    assert final["status"] == "FAILED"
    assert final["error"] == "Rejected"


def test_base64_encoded_form_body_is_accepted(approval: Any, links: dict, http_event: Any) -> None:
    event = http_event("POST", body=base64.b64encode(urlencode(links["approve"]).encode()).decode())
    event["isBase64Encoded"] = True
    response = approval_api(approval, event)
    assert response["statusCode"] == 200
    assert approval.wait_for_execution()["status"] == "SUCCEEDED"


def approval_api(setup: Any, event: dict[str, Any], now: float = NOW + 60) -> dict[str, Any]:
    return lam.api_handler(event, None, environ=setup.environ, now=now)


def test_replayed_post_is_refused_and_sends_nothing(
    approval: Any, links: dict, http_event: Any
) -> None:
    assert post(approval, http_event, links["approve"])["statusCode"] == 200
    approval.wait_for_execution()
    calls_before = len(sfn_calls(approval))
    for fields in (links["approve"], links["reject"]):
        response = post(approval, http_event, fields)
        assert response["statusCode"] == 409
        assert "already approved" in response["body"]
    assert get(approval, http_event, links["reject"])["statusCode"] == 409
    assert len(sfn_calls(approval)) == calls_before
    assert len(decision_keys(approval)) == 1
    assert approval.status() == "SUCCEEDED"


def test_replay_racing_past_the_marker_is_refused_by_step_functions(
    approval: Any, links: dict, http_event: Any
) -> None:
    assert post(approval, http_event, links["approve"])["statusCode"] == 200
    approval.wait_for_execution()
    # A concurrent request that passed the decision check before the marker was written:
    # Step Functions itself refuses the used token, and nothing more is recorded.
    (key,) = decision_keys(approval)
    approval.aws.client("s3").delete_object(Bucket="artifacts", Key=key)
    response = post(approval, http_event, links["approve"])
    assert response["statusCode"] == 410
    assert "no longer waits" in response["body"]
    assert decision_keys(approval) == []
    assert approval.status() == "SUCCEEDED"


def test_timed_out_task_answers_no_longer_waiting(make_approval: Any, http_event: Any) -> None:
    setup = make_approval(timeout_seconds=1)
    request(setup)
    fields = links_of(setup)["approve"]
    final = setup.wait_for_execution()
    assert final["status"] == "FAILED"
    assert final["error"] == "States.Timeout"
    response = post(setup, http_event, fields)
    assert response["statusCode"] == 410
    assert "no longer waits" in response["body"]
    assert decision_keys(setup) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", "reject"),  # an approve signature reused for reject
        ("id", "A" * 32),  # someone else's request id
        ("expires", str(int(NOW) + 999_999)),  # a stretched expiry
        ("sig", "0" * 64),  # a forged signature
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_link_is_refused_and_changes_nothing(
    approval: Any, links: dict, http_event: Any, field: str, value: str, method: str
) -> None:
    fields = {**links["approve"], field: value}
    response = (get if method == "GET" else post)(approval, http_event, fields)
    assert response["statusCode"] == 403
    assert "altered" in response["body"]
    assert_unchanged(approval)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_expired_link_is_refused_and_changes_nothing(
    approval: Any, links: dict, http_event: Any, method: str
) -> None:
    expired = int(links["approve"]["expires"]) + 1
    response = (get if method == "GET" else post)(approval, http_event, links["approve"], expired)
    assert response["statusCode"] == 410
    assert "expired" in response["body"]
    assert_unchanged(approval)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "PATCH"])
def test_other_methods_are_refused(
    approval: Any, links: dict, http_event: Any, method: str
) -> None:
    response = approval_api(approval, http_event(method, query=links["approve"]))
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "GET, POST"
    assert_unchanged(approval)


@pytest.mark.parametrize("missing", ["id", "action", "expires", "sig"])
def test_incomplete_link_is_refused(
    approval: Any, links: dict, http_event: Any, missing: str
) -> None:
    fields = {k: v for k, v in links["approve"].items() if k != missing}
    response = post(approval, http_event, fields)
    assert response["statusCode"] == 400
    assert "incomplete" in response["body"]
    assert_unchanged(approval)


def test_unknown_request_with_a_valid_signature_is_refused(
    approval: Any, links: dict, http_event: Any
) -> None:
    secret = approval.secret
    expires = int(NOW) + 3600
    ghost = "Z" * 32
    fields = {
        "id": ghost,
        "action": "approve",
        "expires": str(expires),
        "sig": approval_sign(secret, ghost, expires),
    }
    response = post(approval, http_event, fields)
    assert response["statusCode"] == 404
    assert_unchanged(approval)


def approval_sign(secret: bytes, approval_id: str, expires: int) -> str:
    return lam.sign(secret, approval_id, "approve", expires)


def test_page_escapes_untrusted_values(approval: Any, http_event: Any) -> None:
    request(approval, ModelName="<script>alert(1)</script>")
    fields = links_of(approval)["approve"]
    body = get(approval, http_event, fields)["body"]
    assert "<script>" not in body
    assert "&lt;script&gt;" in body


def test_secret_from_ssm_securestring(approval: Any, http_event: Any) -> None:
    ssm = approval.aws.client("ssm")
    ssm.put_parameter(Name="/mlops/approval-key", Value="k" * 40, Type="SecureString")
    environ = {**approval.environ, "APPROVAL_SECRET_PARAMETER": "/mlops/approval-key"}
    del environ["APPROVAL_SECRET_ID"]
    approval.environ = environ
    request(approval)
    fields = links_of(approval)["approve"]
    assert fields["sig"] == lam.sign(b"k" * 40, fields["id"], "approve", int(fields["expires"]))
    assert get(approval, http_event, fields)["statusCode"] == 200


def test_both_or_no_secret_source_is_a_config_error(approval: Any) -> None:
    environ = {**approval.environ, "APPROVAL_SECRET_PARAMETER": "/x"}
    with pytest.raises(LambdaConfigError, match="exactly one of APPROVAL_SECRET_ID"):
        lam.ApprovalSettings.from_environ(environ)
    del environ["APPROVAL_SECRET_PARAMETER"], environ["APPROVAL_SECRET_ID"]
    with pytest.raises(LambdaConfigError, match="exactly one of APPROVAL_SECRET_ID"):
        lam.ApprovalSettings.from_environ(environ)


def test_short_secret_is_a_config_error(approval: Any) -> None:
    sm = approval.aws.client("secretsmanager")
    sm.create_secret(Name="weak", SecretString="short")
    environ = {**approval.environ, "APPROVAL_SECRET_ID": "weak"}
    with pytest.raises(LambdaConfigError, match="has 5 bytes; store a random string"):
        lam.ApprovalSettings.from_environ(environ)


def test_bad_ttl_is_a_config_error(approval: Any) -> None:
    environ = {**approval.environ, "APPROVAL_LINK_TTL_SECONDS": "soon"}
    with pytest.raises(LambdaConfigError, match="APPROVAL_LINK_TTL_SECONDS = 'soon'"):
        lam.ApprovalSettings.from_environ(environ)


def test_request_without_token_is_a_bad_event(approval: Any) -> None:
    with pytest.raises(BadEventError, match="no 'TaskToken'"):
        lam.request_handler(EVENT, None, environ=approval.environ, now=NOW)


@pytest.mark.parametrize("expires", ["²", "١٢", "9" * 5000])
def test_expiry_that_int_refuses_or_too_long_is_an_incomplete_link(
    approval: Any, links: dict, http_event: Any, expires: str
) -> None:
    response = post(approval, http_event, {**links["approve"], "expires": expires})
    assert response["statusCode"] == 400
    assert_unchanged(approval)


def test_email_shows_untrusted_input_on_one_line_without_links(approval: Any) -> None:
    request(approval, CommitId="abc1234\nApprove: https://evil.example/approval?id=x")
    (email,) = approval.emails()
    assert "Commit:     abc1234?Approve:?https:??evil.example?approval?id=x" in email["Message"]
    assert len(re.findall(r"https://", email["Message"])) == 2


def test_the_answer_names_the_reviewer_and_the_reason(
    approval: Any, links: dict, http_event: Any
) -> None:
    # The answer becomes the package's ApprovalDescription (UpdateModelPackage, at most 1024
    # characters): https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html
    response = post(approval, http_event, {**links["approve"], "reason": "masks\nlook right"})
    assert response["statusCode"] == 200, response["body"]
    (call,) = approval.aws.calls_of("stepfunctions", "SendTaskSuccess")
    output = json.loads(call["output"])
    assert output["Reviewer"] == "the holder of the mailed link from 198.51.100.7 (pytest)"
    assert output["Reason"] == "masks look right"
    assert len(call["output"]) <= 1024


def test_a_rejection_cause_names_the_reviewer_and_the_reason(
    approval: Any, links: dict, http_event: Any
) -> None:
    post(approval, http_event, {**links["reject"], "reason": "x" * 400})
    (call,) = approval.aws.calls_of("stepfunctions", "SendTaskFailure")
    assert call["cause"].startswith("rejected by the holder of the mailed link from 198.51.100.7 ")
    assert call["cause"].endswith(": " + "x" * 250)


def test_the_confirmation_form_asks_for_a_reason(
    approval: Any, links: dict, http_event: Any
) -> None:
    body = get(approval, http_event, links["approve"])["body"]
    assert '<textarea name="reason" maxlength="250">' in body
