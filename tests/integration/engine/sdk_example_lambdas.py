"""A user's own Lambda handler, loaded by `exec --lambda NAME=module:function` in the tests.

It behaves as the SDK hello-world example describes its function: it returns the input and
its base64 encoding.
"""

from __future__ import annotations

import base64
from typing import Any


def encode(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the status code, the input and its base64 encoding."""
    return {
        "statusCode": 200,
        "input": event["input"],
        "output": base64.b64encode(event["input"].encode()).decode("UTF-8"),
    }
