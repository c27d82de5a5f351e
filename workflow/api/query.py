"""The AWS query protocol (form-encoded requests, XML answers), for CloudWatch's older clients.

CloudWatch was a query service before it listed JSON and CBOR; SDKs and CLIs built before that
still send ``POST /`` with ``Action=<Op>&Version=2010-08-01&...`` and read XML
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/making-api-requests.html#CloudWatch-API-requests-using-post-method).
Members are read and written by the operation's shapes in botocore's service model: lists as
``Name.member.N``, nested structures as ``Name.Member``, timestamps as ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

XML_NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"


@functools.lru_cache(maxsize=1)
def _cloudwatch_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("cloudwatch")


def operation_shapes(operation: str) -> tuple[Any, Any]:
    """The input and output shapes of a CloudWatch operation (``None`` where it has none)."""
    model = _cloudwatch_model().operation_model(operation)
    return model.input_shape, model.output_shape


def parse_form(form: Mapping[str, str], shape: Any, prefix: str = "") -> Any:
    """Read the members of ``shape`` from query parameters under ``prefix``."""
    kind = shape.type_name
    if kind == "structure":
        result = {}
        for name, member in shape.members.items():
            key = f"{prefix}{member.serialization.get('name', name)}"
            value = parse_form(form, member, key + ".") if _has(form, key) else None
            if value is not None:
                result[name] = value
        return result
    key = prefix[:-1]
    if kind == "list":
        items = []
        index = 1
        while _has(form, f"{key}.member.{index}"):
            items.append(parse_form(form, shape.member, f"{key}.member.{index}."))
            index += 1
        return items
    text = form.get(key)
    if text is None:
        return None
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("double", "float"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    return text


def _has(form: Mapping[str, str], key: str) -> bool:
    return key in form or any(k.startswith(key + ".") for k in form)


def _xml(value: Any, shape: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        parts = []
        for name, member in shape.members.items():
            if isinstance(value, Mapping) and value.get(name) is not None:
                tag = member.serialization.get("name", name)
                parts.append(f"<{tag}>{_xml(value[name], member)}</{tag}>")
        return "".join(parts)
    if kind == "list":
        return "".join(f"<member>{_xml(item, shape.member)}</member>" for item in value)
    if kind == "timestamp":
        moment = (
            value
            if isinstance(value, dt.datetime)
            else dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
        )
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def response_xml(operation: str, result: Mapping[str, Any], request_id: str) -> bytes:
    """The XML answer of an operation."""
    _, output = operation_shapes(operation)
    body = f"<{operation}Result>{_xml(result, output)}</{operation}Result>" if output else ""
    return (
        f'<{operation}Response xmlns="{XML_NAMESPACE}">{body}<ResponseMetadata><RequestId>'
        f"{request_id}</RequestId></ResponseMetadata></{operation}Response>"
    ).encode()


def error_xml(code: str, message: str, request_id: str) -> bytes:
    """The XML error answer."""
    return (
        f'<ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>Sender</Type><Code>{escape(code)}'
        f"</Code><Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    ).encode()


__all__ = ["error_xml", "operation_shapes", "parse_form", "response_xml"]
