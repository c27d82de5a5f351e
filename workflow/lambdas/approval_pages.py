"""The HTML pages of the approval API: the confirmation form, the answers, their headers.

Every value shown comes from the approval record or the request, so each is HTML-escaped, and
the pages forbid scripts, framing and caching (the headers below).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

ROUTE = "/approval"
REASON_LIMIT = 250  # characters of the reason typed into the confirmation form


def iso(seconds: float) -> str:
    """An epoch time as the pages and emails show it (UTC)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_metric(value: Any) -> str:
    """A metric value: floats with four decimals."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}


def page(status: int, title: str, message: str, body_html: str = "") -> dict[str, Any]:
    """The API Gateway response of one page: ``title`` and ``message`` escaped, ``body_html``
    already safe."""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5}"
        "table{border-collapse:collapse}td{padding:.2em 1em .2em 0}"
        "button{font-size:1.1em;padding:.5em 1.5em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{body_html}</body></html>"
    )
    headers = dict(SECURITY_HEADERS)
    if status == 405:
        headers["Allow"] = "GET, POST"
    return {"statusCode": status, "headers": headers, "body": document}


def summary_table(record: Mapping[str, Any]) -> str:
    """The approval record (model, commit, endpoint, execution, metrics) as an escaped table."""
    rows = [
        ("Model", record.get("model")),
        ("Commit", record.get("commit")),
        ("Endpoint", record.get("endpoint")),
        ("Execution", record.get("execution")),
    ]
    metrics = record.get("metrics") or {}
    if isinstance(metrics, Mapping):
        rows += [(name, format_metric(value)) for name, value in sorted(metrics.items())]
    cells = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(str(value or '-'))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def confirmation_form(fields: Mapping[str, str], record: Mapping[str, Any]) -> str:
    """The page a link's GET shows: the record, a reason field and the button that POSTs."""
    action = fields["action"]
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(fields[name], quote=True)}">'
        for name in ("id", "action", "expires", "sig")
    )
    label = "Approve and deploy" if action == "approve" else "Reject"
    return (
        f"{summary_table(record)}"
        f'<form method="post" action="{ROUTE}">{hidden}'
        f"<p><label>Reason (optional, recorded with the decision)<br>"
        f'<textarea name="reason" maxlength="{REASON_LIMIT}"></textarea></label></p>'
        f'<p><button type="submit">{label}</button></p></form>'
        f"<p>This link expires at {html.escape(iso(int(fields['expires'])))}.</p>"
    )
