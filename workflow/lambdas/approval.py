"""Human approval of a model: signed, expiring email links; only a POST decides.

Security design (the original sample mailed unauthenticated GET links carrying the raw task token):

1. `request_handler` (the state machine's `lambda:invoke.waitForTaskToken` step) stores the task
   token in the private bucket under ``<APPROVAL_PREFIX><id>/request.json`` and mails (SNS) two
   links carrying only an opaque random id, the action, an expiry time and an HMAC-SHA256
   signature over all three. The HMAC key is a secret from Secrets Manager or an SSM
   SecureString; it never leaves AWS.
2. `api_handler` (the HTTP API) verifies the signature in constant time, then the expiry, then
   that the request exists and was not decided yet. A GET only renders a confirmation page with a
   form, because mail scanners pre-open links; the form's POST calls `SendTaskSuccess`, or
   `SendTaskFailure` with error ``Rejected`` (what the state machine's Catch matches), and then
   records ``<id>/decision.json``. The answer names the reviewer as far as the link knows them
   (the holder of the mailed link, from the POST's source IP and user agent) and the optional
   reason typed into the form; the model registry keeps both as the package's
   ``ApprovalDescription``.
3. A tampered (403), expired (410), unknown (404), already decided (409) or malformed (400) link
   and any other method (405) is refused with a clear page and changes nothing. When Step
   Functions no longer waits for the token (TaskTimedOut / InvalidToken: timed out, stopped, or
   decided by a concurrent request), the page says so (410) and nothing is recorded.

Environment:
    APPROVAL_SECRET_ID: Secrets Manager secret holding the HMAC key, or
    APPROVAL_SECRET_PARAMETER: SSM SecureString parameter holding it (exactly one of the two).
    APPROVAL_BUCKET: bucket for the request and decision records.
    APPROVAL_PREFIX: key prefix of the records (default ``approvals/``).
    APPROVAL_API_URL: base URL of the HTTP API (request_handler only).
    APPROVAL_TOPIC_ARN: SNS topic the reviewer subscribed to (request_handler only).
    APPROVAL_LINK_TTL_SECONDS: how long links stay valid (default 86400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from workflow.contracts import ERROR_REJECTED
from workflow.lambdas import clients
from workflow.lambdas._util import error_code, require_env, require_field
from workflow.lambdas.approval_pages import (
    REASON_LIMIT,
    ROUTE,
    confirmation_form,
    format_metric,
    iso,
    page,
    summary_table,
)
from workflow.lambdas.errors import LambdaConfigError

logger = logging.getLogger(__name__)

LINK_VERSION = "v1"
ACTIONS = ("approve", "reject")
DEFAULT_PREFIX = "approvals/"
DEFAULT_TTL_SECONDS = 86400
MIN_SECRET_BYTES = 32
# Step Functions answers these when the token no longer waits: the task timed out, the execution
# stopped, or another request already answered it. Nothing may change then.
# The reason and user agent the answer carries, cut so that the approval's output stays within
# UpdateModelPackage's ApprovalDescription (1024 characters) as JSON text.
USER_AGENT_LIMIT = 100
GONE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIG_PATTERN = re.compile(r"[0-9a-f]{64}")
# ASCII digits only (str.isdigit() also takes '²', which int() refuses) and at most 12 of them
# (Unix seconds until the year 33658), so a link cannot make int() work on thousands of digits.
_EXPIRES_PATTERN = re.compile(r"[0-9]{1,12}")
# What the email shows of a value from the execution input: names, ARNs, commit ids and numbers.
# Anything else (line breaks, control characters, '/', spaces) becomes '?', so a crafted CommitId
# cannot add lines or links that look like the genuine ones.
# Line breaks and other control characters of the reviewer's free text become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL_UNSAFE = re.compile(r"[^A-Za-z0-9._:@+=-]")
EMAIL_VALUE_CHARS = 200


@dataclass(frozen=True, kw_only=True)
class ApprovalSettings:
    """What both approval handlers read from their environment."""

    secret: bytes
    bucket: str
    prefix: str
    ttl_seconds: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ApprovalSettings:
        """Read the settings and fetch the HMAC key.

        Args:
            environ: The function's environment.

        Returns:
            The settings.

        Raises:
            LambdaConfigError: A variable is missing or malformed, or the secret is too short.
        """
        bucket = require_env(environ, "APPROVAL_BUCKET", "set it to the artifact bucket's name")
        prefix = environ.get("APPROVAL_PREFIX", DEFAULT_PREFIX).strip() or DEFAULT_PREFIX
        if not prefix.endswith("/"):
            prefix += "/"
        raw_ttl = environ.get("APPROVAL_LINK_TTL_SECONDS", str(DEFAULT_TTL_SECONDS)).strip()
        try:
            ttl = int(raw_ttl)
        except ValueError:
            ttl = 0
        if ttl <= 0:
            raise LambdaConfigError(
                f"APPROVAL_LINK_TTL_SECONDS = {raw_ttl!r} is not a positive number of seconds; "
                f"set it to e.g. {DEFAULT_TTL_SECONDS}."
            )
        return cls(secret=load_secret(environ), bucket=bucket, prefix=prefix, ttl_seconds=ttl)

    def request_key(self, approval_id: str) -> str:
        """Return the S3 key of the stored request (holds the task token)."""
        return f"{self.prefix}{approval_id}/request.json"

    def decision_key(self, approval_id: str) -> str:
        """Return the S3 key of the decision record, written once."""
        return f"{self.prefix}{approval_id}/decision.json"


def load_secret(environ: Mapping[str, str]) -> bytes:
    """Fetch the HMAC key from Secrets Manager or SSM (SecureString, decrypted).

    Args:
        environ: Names APPROVAL_SECRET_ID or APPROVAL_SECRET_PARAMETER (exactly one).

    Returns:
        The key bytes (UTF-8 of the secret string).

    Raises:
        LambdaConfigError: Neither or both variables are set, or the secret is shorter than
            32 bytes.
    """
    secret_id = environ.get("APPROVAL_SECRET_ID", "").strip()
    parameter = environ.get("APPROVAL_SECRET_PARAMETER", "").strip()
    if bool(secret_id) == bool(parameter):
        raise LambdaConfigError(
            "set exactly one of APPROVAL_SECRET_ID (Secrets Manager) and "
            f"APPROVAL_SECRET_PARAMETER (SSM SecureString), got {secret_id!r} and {parameter!r}."
        )
    if secret_id:
        response = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)
        value = response.get("SecretString") or ""
        source = f"secret {secret_id!r}"
    else:
        response = clients.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
        value = response["Parameter"]["Value"]
        source = f"SSM parameter {parameter!r}"
    key = value.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise LambdaConfigError(
            f"the approval signing key in {source} has {len(key)} bytes; store a random string "
            f"of at least {MIN_SECRET_BYTES} characters there."
        )
    return key


def sign(secret: bytes, approval_id: str, action: str, expires: int) -> str:
    """Return the hex HMAC-SHA256 of one link (id, action and expiry are all covered).

    Args:
        secret: The HMAC key.
        approval_id: The opaque request id.
        action: ``approve`` or ``reject``.
        expires: Expiry as Unix seconds.

    Returns:
        64 lowercase hex characters.
    """
    message = f"{LINK_VERSION}\n{approval_id}\n{action}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def link(api_url: str, secret: bytes, approval_id: str, action: str, expires: int) -> str:
    """Return the signed link for one action."""
    query = urlencode(
        {
            "id": approval_id,
            "action": action,
            "expires": str(expires),
            "sig": sign(secret, approval_id, action, expires),
        }
    )
    return f"{api_url.rstrip('/')}{ROUTE}?{query}"


# ---------------------------------------------------------------------------------------------
# request_handler: store the token, mail the links
# ---------------------------------------------------------------------------------------------


def _metrics_of(event: Mapping[str, Any]) -> dict[str, Any]:
    metrics = event.get("Metrics") or {}
    # A LambdaStep result keeps the function's return value under "Payload".
    if isinstance(metrics, Mapping) and isinstance(metrics.get("Payload"), Mapping):
        metrics = metrics["Payload"]
    return dict(metrics) if isinstance(metrics, Mapping) else {"value": metrics}


def plain(value: Any) -> str:
    """`value` as one line of the email: unsafe characters as '?', at most 200 characters.

    The execution input (CommitId, ModelName, ...) is not trusted: a line break in it would
    start a new line of the reviewer's email, e.g. a fake ``Approve: https://...`` link.
    """
    text = _EMAIL_UNSAFE.sub("?", str(value))
    if len(text) > EMAIL_VALUE_CHARS:
        text = text[: EMAIL_VALUE_CHARS - 3] + "..."
    return text or "-"


def request_handler(
    event: Mapping[str, Any],
    context: Any,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Store the task token and email the reviewer signed approve/reject links.

    Args:
        event: Payload with ``TaskToken`` (required) and, for the email, ``Metrics`` (the
            evaluate result, bare or under ``Payload``), ``ModelName``, ``CommitId``,
            ``ExecutionArn`` (or ``Execution``), ``EndpointName``.
        context: The Lambda context (unused).
        environ: Environment to read (default `os.environ`).
        now: Current Unix time (tests).

    Returns:
        ``{"ApprovalId", "ExpiresAt", "MessageId"}`` (Step Functions ignores it: the decision
        arrives through the task token).

    Raises:
        BadEventError: TaskToken is missing.
        LambdaConfigError: A required environment variable is missing.
    """
    env = os.environ if environ is None else environ
    token = require_field(event, "TaskToken")
    settings = ApprovalSettings.from_environ(env)
    api_url = require_env(env, "APPROVAL_API_URL", "set it to the approval HTTP API's base URL")
    topic = require_env(env, "APPROVAL_TOPIC_ARN", "set it to the reviewer's SNS topic ARN")
    created = time.time() if now is None else now
    expires = int(created) + settings.ttl_seconds
    approval_id = secrets.token_urlsafe(24)
    metrics = _metrics_of(event)
    execution = str(event.get("ExecutionArn") or event.get("Execution") or "")
    record = {
        "version": 1,
        "id": approval_id,
        "token": token,
        "created": int(created),
        "expires": expires,
        "execution": execution,
        "commit": str(event.get("CommitId", "")),
        "model": str(event.get("ModelName", "")),
        "endpoint": str(event.get("EndpointName", "")),
        "metrics": metrics,
    }
    clients.client("s3").put_object(
        Bucket=settings.bucket,
        Key=settings.request_key(approval_id),
        Body=json.dumps(record).encode(),
        ContentType="application/json",
    )
    links = {a: link(api_url, settings.secret, approval_id, a, expires) for a in ACTIONS}
    lines = [
        "A new model is waiting for your approval before it is deployed.",
        "",
        f"Model:      {plain(record['model'])}",
        f"Commit:     {plain(record['commit'])}",
        f"Endpoint:   {plain(record['endpoint'])}",
        f"Execution:  {plain(execution)}",
        "",
        "Evaluation metrics:",
        *(
            f"  {plain(name)}: {plain(format_metric(value))}"
            for name, value in sorted(metrics.items(), key=lambda item: str(item[0]))
        ),
        "",
        f"Approve: {links['approve']}",
        "",
        f"Reject:  {links['reject']}",
        "",
        "Each link opens a confirmation page; nothing happens until you press its button.",
        f"The links expire at {iso(expires)}.",
    ]
    # SNS refuses subjects with line breaks or control characters; plain() removes them.
    subject = f"Approve model {plain(record['model'] or record['commit'])}"[:99]
    response = clients.client("sns").publish(
        TopicArn=topic,
        Subject=subject,
        Message="\n".join(lines),
    )
    logger.info("approval %s requested for %s; links expire at %s", approval_id, execution, expires)
    return {
        "ApprovalId": approval_id,
        "ExpiresAt": iso(expires),
        "MessageId": response.get("MessageId"),
    }


# ---------------------------------------------------------------------------------------------
# api_handler: the HTTP API
# ---------------------------------------------------------------------------------------------


def _method(event: Mapping[str, Any]) -> str:
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method") or event.get("httpMethod") or "").upper()


def _form_fields(event: Mapping[str, Any], method: str) -> dict[str, str]:
    query = {k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
    if method != "POST":
        return query
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            body = ""
    fields = {k: v[0] for k, v in parse_qs(str(body), keep_blank_values=True).items() if v}
    return {**query, **fields}


def _source(event: Mapping[str, Any]) -> dict[str, str]:
    http = (event.get("requestContext") or {}).get("http") or {}
    return {
        "source_ip": str(http.get("sourceIp", "")),
        "user_agent": str(http.get("userAgent", "")),
    }


def _read_json(bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = clients.client("s3").get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
    data = json.loads(response["Body"].read())
    return data if isinstance(data, dict) else None


def api_handler(
    event: Mapping[str, Any],
    context: Any,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Answer the approval HTTP API (API Gateway HTTP API, payload format 2.0).

    GET shows a confirmation page; only POST approves or rejects. Every refusal is a page with a
    clear sentence and an HTTP status (400, 403, 404, 405, 409, 410), and changes nothing.

    Args:
        event: The API Gateway v2 event.
        context: The Lambda context (unused).
        environ: Environment to read (default `os.environ`).
        now: Current Unix time (tests).

    Returns:
        An API Gateway v2 response: ``{"statusCode", "headers", "body"}`` with an HTML body.
    """
    env = os.environ if environ is None else environ
    current = time.time() if now is None else now
    method = _method(event)
    if method not in ("GET", "POST"):
        return page(
            405,
            "Method not allowed",
            f"{method or 'This method'} is not accepted here; "
            "open the link from the email in a browser.",
        )
    fields = _form_fields(event, method)
    approval_id = fields.get("id", "")
    action = fields.get("action", "")
    expires_raw = fields.get("expires", "")
    signature = fields.get("sig", "")
    if not (
        _ID_PATTERN.fullmatch(approval_id)
        and action in ACTIONS
        and _EXPIRES_PATTERN.fullmatch(expires_raw)
        and _SIG_PATTERN.fullmatch(signature)
    ):
        return page(
            400,
            "Incomplete link",
            "This approval link is incomplete or malformed; "
            "open the full link from the email (some mail clients cut long links).",
        )
    expires = int(expires_raw)
    settings = ApprovalSettings.from_environ(env)
    expected = sign(settings.secret, approval_id, action, expires)
    if not hmac.compare_digest(expected, signature):
        logger.warning("refused approval link with a bad signature for id %s", approval_id)
        return page(
            403,
            "Invalid link",
            "This approval link was altered or was not issued by "
            "this workflow; open the link from the email unchanged.",
        )
    if current > expires:
        return page(
            410,
            "Link expired",
            f"This approval link expired at {iso(expires)}; "
            "start the pipeline again to get a new request.",
        )
    record = _read_json(settings.bucket, settings.request_key(approval_id))
    if record is None or "token" not in record:
        return page(
            404,
            "Unknown request",
            "No approval request with this id exists (it was "
            "removed or never created); nothing was changed.",
        )
    decision = _read_json(settings.bucket, settings.decision_key(approval_id))
    if decision is not None:
        done = "approved" if decision.get("action") == "approve" else "rejected"
        return page(
            409,
            "Already decided",
            f"This model was already {done} at "
            f"{iso(float(decision.get('decided', 0)))}; nothing was changed.",
            summary_table(record),
        )
    if method == "GET":
        verb = "approve" if action == "approve" else "reject"
        return page(
            200,
            f"Confirm: {verb} this model?",
            "Check the metrics below, then press "
            "the button to confirm. Opening this page changed nothing.",
            confirmation_form(fields, record),
        )
    reviewer = _reviewer(_source(event), fields.get("reason", ""))
    return _decide(settings, record, action, current, reviewer)


def _reviewer(source: Mapping[str, str], reason: str) -> dict[str, str]:
    """Who decided, as far as a signed link knows, and why: the answer's ``Reviewer``/``Reason``.

    The links carry no login: the reviewer is whoever holds the mailed link, seen from the POST's
    source IP and user agent. The reason is the form's free text, on one line and cut short.
    Neither goes into a page or an email: only into the answer and the decision record.
    """
    return {
        "source_ip": source.get("source_ip", ""),
        "user_agent": _CONTROL.sub(" ", source.get("user_agent", "")).strip()[:USER_AGENT_LIMIT],
        "reason": _CONTROL.sub(" ", reason).strip()[:REASON_LIMIT],
    }


def _decide(
    settings: ApprovalSettings,
    record: Mapping[str, Any],
    action: str,
    now: float,
    reviewer: Mapping[str, str],
) -> dict[str, Any]:
    approval_id = str(record["id"])
    sfn = clients.client("stepfunctions")
    who = f"the holder of the mailed link from {reviewer['source_ip'] or 'an unknown address'}"
    reason = reviewer["reason"]
    try:
        if action == "approve":
            output = {
                "Approved": True,
                "ApprovalId": approval_id,
                "DecidedAt": iso(now),
                "Reviewer": f"{who} ({reviewer['user_agent'] or 'no user agent'})",
                "Reason": reason,
            }
            sfn.send_task_success(taskToken=record["token"], output=json.dumps(output))
        else:
            sfn.send_task_failure(
                taskToken=record["token"],
                error=ERROR_REJECTED,
                cause=f"rejected by {who} through approval request {approval_id} "
                f"at {iso(now)}" + (f": {reason}" if reason else ""),
            )
    except Exception as exc:
        code = error_code(exc)
        if code in GONE_TOKEN_ERRORS:
            return page(
                410,
                "No longer waiting",
                "The pipeline no longer waits for this "
                f"decision ({code}: it timed out, was stopped, or was already decided); "
                "nothing was changed.",
            )
        logger.exception("Step Functions refused the %s of approval %s", action, approval_id)
        return page(
            503,
            "Try again",
            f"Step Functions could not be reached ({code or 'error'}); "
            "nothing was changed, so reload this page and press the button again.",
        )
    decision = {"id": approval_id, "action": action, "decided": int(now), **reviewer}
    note = ""
    try:
        clients.client("s3").put_object(
            Bucket=settings.bucket,
            Key=settings.decision_key(approval_id),
            Body=json.dumps(decision).encode(),
            ContentType="application/json",
        )
    except Exception:
        # Step Functions already has the answer: the decision stands, only its record is
        # missing (a replay is then refused by Step Functions itself, 410).
        logger.exception("approval %s: %s sent, but its record was not saved", approval_id, action)
        note = " Its record could not be saved (see the approval function's logs)."
    logger.info("approval %s: %s", approval_id, action)
    if action == "approve":
        return page(
            200,
            "Approved",
            "The model is approved; the pipeline goes on to deploy it." + note,
            summary_table(record),
        )
    return page(
        200,
        "Rejected",
        "The model is rejected; the pipeline stops without deploying." + note,
        summary_table(record),
    )
