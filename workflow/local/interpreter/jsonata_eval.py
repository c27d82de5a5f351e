"""Evaluate one Step Functions JSONata expression with `jsonata-python` (pure Python).

Step Functions implements JSONata 2.0.6 with its own functions added and `$eval` removed
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html). `evaluate`
runs an expression against named bindings (`states` for `$states`, and the workflow
variables) with those functions bound, and returns a plain JSON value:

- JSONata `null` becomes `None`; an integral number becomes an `int` (JSON has one number
  type, and AWS prints `3`, not `3.0`);
- an expression that returns nothing (undefined), a function, or a non-finite number fails:
  "JSON cannot represent undefined", so AWS fails the state with
  `States.QueryEvaluationError`.

Every failure is a `QueryEvaluationError` whose message is the cause AWS-style: it names the
expression and the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from jsonata import Jsonata, Utils

from workflow.local.interpreter.jsonata_functions import step_functions_functions

__all__ = ["QueryEvaluationError", "evaluate", "to_json"]

_MAX_SAFE_INTEGER: Final[int] = 2**53


class QueryEvaluationError(Exception):
    """A JSONata expression failed or returned a value JSON cannot hold.

    Attributes:
        cause: The sentence AWS-style: the expression, the field, and what went wrong.
    """

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class _Unsupported(Exception):
    """The result holds a value JSON cannot represent (a function, NaN, infinity)."""


def to_json(value: Any) -> Any:
    """Return a JSONata result as plain JSON (None for null, int for integral numbers).

    Raises:
        _Unsupported: The value holds a function or a non-finite number.
    """
    if value is Utils.NULL_VALUE:
        return None
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unsupported("a non-finite number")
        if value.is_integer() and abs(value) < _MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, Mapping):
        # A Python None inside a structure is a JSON null of the bound data (JSONata itself
        # leaves undefined values out of the objects and arrays it builds).
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    raise _Unsupported("a function" if Utils.is_function(value) else type(value).__name__)


def _to_jsonata(value: Any) -> Any:
    """Bind a JSON value: a top-level null must be JSONata null, not undefined."""
    return Utils.NULL_VALUE if value is None else value


def _lambda(function: Callable[..., Any]) -> Jsonata.JLambda:
    def call(*args: Any) -> Any:
        try:
            plain = [to_json(arg) for arg in args]
        except _Unsupported as exc:
            raise ValueError(f"an argument is {exc}") from exc
        return function(*plain)

    return Jsonata.JLambda(call)


def evaluate(expression: str, bindings: Mapping[str, Any], field: str | None) -> Any:
    """Evaluate `expression` with `bindings` (names without `$`) and return a JSON value.

    Args:
        expression: The JSONata text between `{%` and `%}`.
        bindings: Variable name -> JSON value (`states` holds `$states`).
        field: The ASL field the expression sits in, for the error cause (None: unknown).

    Raises:
        QueryEvaluationError: The expression does not parse, fails, returns nothing, or
            returns a value JSON cannot hold.
    """
    where = f"The JSONata expression '{expression}'"
    if field:
        where += f" specified for the field '{field}'"
    try:
        compiled = Jsonata(expression)
    except Exception as exc:  # jsonata-python raises JException, and Python errors on bugs
        raise QueryEvaluationError(f"{where} is not valid JSONata: {exc}") from exc
    compiled.set_output_convert_nulls(False)
    frame: dict[str, Any] = {
        name: _lambda(function) for name, function in step_functions_functions().items()
    }
    frame.update((name, _to_jsonata(value)) for name, value in bindings.items())
    try:
        result = compiled.evaluate(None, frame)
    except Exception as exc:  # type errors, bad function arguments, Python arithmetic errors
        message = str(exc) or type(exc).__name__
        raise QueryEvaluationError(f"{where} threw an error: {message}") from exc
    if result is None:
        raise QueryEvaluationError(f"{where} returned nothing (undefined).")
    try:
        return to_json(result)
    except _Unsupported as exc:
        raise QueryEvaluationError(f"{where} returned an unsupported result type ({exc}).") from exc
