"""What goes over the wire: JSON encoding of AWS shapes and opaque paging tokens.

AWS's JSON protocols send timestamps as epoch seconds; list operations page with ``maxResults``
and an opaque ``nextToken`` that is only valid for the same listing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from workflow.api.errors import ApiError, validation

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def to_wire(value: Any) -> Any:
    """Return ``value`` with datetimes as epoch seconds, recursively (the JSON protocol)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Encode a response body."""
    return json.dumps(to_wire(value), default=str)


def cbor_loads(data: bytes) -> dict[str, Any]:
    """Decode a Smithy RPC v2 CBOR request body (empty: no members).

    https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html
    """
    import cbor2  # the [local] extra; only CBOR requests need it

    if not data:
        return {}
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise ApiError("SerializationException", f"the body is not CBOR: {exc}") from exc
    return value if isinstance(value, dict) else {}


def cbor_dumps(value: Any) -> bytes:
    """Encode a response body in CBOR: no null members, timestamps as tag 1 (epoch seconds)."""
    import cbor2

    return bytes(cbor2.dumps(_drop_none(value), datetime_as_timestamp=True))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def page(
    items: Sequence[T],
    body: dict[str, Any],
    scope: str,
    *,
    size_key: str = "maxResults",
    token_key: str = "nextToken",
    invalid: Callable[[str], ApiError] | None = None,
    default_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[T], str | None]:
    """Cut one page out of ``items`` as AWS's list operations do.

    Args:
        items: The whole listing, in the order the API returns it.
        body: The request (``maxResults``/``nextToken``, or the names given).
        scope: What the token belongs to (a token of another listing is refused).
        size_key: The request member holding the page size (0 or absent: the default).
        token_key: The request member holding the token.
        invalid: Builds the error for a bad token (default ``InvalidToken``).
        default_size: Page size when none is given.

    Returns:
        The page and the next token (``None`` on the last page).
    """
    size = body.get(size_key) or 0
    if not isinstance(size, int) or size < 0 or size > MAX_PAGE_SIZE:
        raise validation(
            f"1 validation error detected: Value '{size}' at '{size_key}' failed to satisfy "
            f"constraint: Member must have value less than or equal to {MAX_PAGE_SIZE}"
        )
    size = size or default_size
    token = body.get(token_key)
    start = 0
    if token:
        start = _decode(str(token), scope, invalid)
    chunk = list(items[start : start + size])
    following = start + size
    return chunk, (_encode(scope, following) if following < len(items) else None)


def _encode(scope: str, offset: int) -> str:
    raw = json.dumps({"s": scope, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(token: str, scope: str, invalid: Callable[[str], ApiError] | None) -> int:
    make = invalid or (lambda message: ApiError("InvalidToken", message))
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
        same = data["s"] == scope
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise make(f"Invalid Token: '{token[:40]}' is not a token this API returned") from None
    if not same or offset < 0:
        raise make(
            f"Invalid Token: '{token[:40]}' belongs to another listing; pass the nextToken of "
            "the same request"
        )
    return offset


__all__ = ["cbor_dumps", "cbor_loads", "dumps", "page", "to_wire"]
