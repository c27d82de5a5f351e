"""The JSONata functions AWS Step Functions adds to JSONata 2.0.6, and the one it removes.

AWS documents them in "Transforming data with JSONata in Step Functions", section "JSONata
functions provided by Step Functions"
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html):

- `$partition(array, chunkSize)`: the array cut into chunks of `chunkSize` items (the last one
  may be shorter), like `States.ArrayPartition`.
- `$range(start, end, step)`: the numbers from `start` to `end` **inclusive** by `step`, like
  `States.ArrayRange` (`$range(0, 10, 2)` is `[0, 2, 4, 6, 8, 10]`); an empty array when `step`
  goes away from `end`.
- `$hash(data, algorithm)`: the hex digest of a string with `MD5`, `SHA-1`, `SHA-256`,
  `SHA-384` or `SHA-512`, like `States.Hash`.
- `$random([seed])`: a number in [0, 1); the same seed always gives the same number.
- `$uuid()`: a version 4 UUID string, like `States.UUID`.
- `$parse(jsonString)`: the JSON value a string holds.
- `$eval` is not available ("use $parse instead").

A function called with a bad argument raises `StepFunctionsFunctionError`, which the evaluator
turns into `States.QueryEvaluationError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from typing import Any, Final

__all__ = ["StepFunctionsFunctionError", "step_functions_functions"]

_HASH_ALGORITHMS: Final[dict[str, str]] = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


class StepFunctionsFunctionError(ValueError):
    """A Step Functions JSONata function got an argument it cannot use."""


def _integer(name: str, function: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StepFunctionsFunctionError(
            f"{function}: {name} must be an integer, got {json.dumps(value, default=str)}"
        )
    if isinstance(value, float) and not value.is_integer():
        raise StepFunctionsFunctionError(f"{function}: {name} must be an integer, got {value}")
    return int(value)


def partition(array: Any = None, chunk_size: Any = None) -> list[list[Any]]:
    """Cut `array` into chunks of `chunk_size` items (`$partition`)."""
    if not isinstance(array, list):
        raise StepFunctionsFunctionError(
            f"$partition: the first argument must be an array, got {json.dumps(array, default=str)}"
        )
    size = _integer("the chunk size", "$partition", chunk_size)
    if size <= 0:
        raise StepFunctionsFunctionError(f"$partition: the chunk size must be > 0, got {size}")
    items = list(array)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _number(name: str, function: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StepFunctionsFunctionError(
            f"{function}: {name} must be a number, got {json.dumps(value, default=str)}"
        )
    return value


def number_range(start: Any = None, end: Any = None, step: Any = 1) -> list[int | float]:
    """Return the numbers from `start` to `end` inclusive by `step` (`$range`)."""
    first = _number("start", "$range", start)
    last = _number("end", "$range", end)
    increment = _number("step", "$range", step)
    if increment == 0:
        raise StepFunctionsFunctionError("$range: the step must not be 0")
    count = math.floor((last - first) / increment) + 1
    return [first + index * increment for index in range(max(count, 0))]


def hash_value(data: Any = None, algorithm: Any = None) -> str:
    """Return the hex digest of the string `data` (`$hash`)."""
    if not isinstance(data, str):
        raise StepFunctionsFunctionError(
            f"$hash: the data must be a string, got {json.dumps(data, default=str)}"
        )
    name = _HASH_ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if name is None:
        raise StepFunctionsFunctionError(
            f"$hash: the algorithm {json.dumps(algorithm, default=str)} is not supported "
            f"(use one of {', '.join(_HASH_ALGORITHMS)})"
        )
    return hashlib.new(name, data.encode("utf-8")).hexdigest()


def random_number(seed: Any = None) -> float:
    """Return a number in [0, 1), the same one for the same seed (`$random`)."""
    if seed is None:
        return random.random()
    return random.Random(_integer("the seed", "$random", seed)).random()


def new_uuid() -> str:
    """Return a new version 4 UUID (`$uuid`)."""
    return str(uuid.uuid4())


def parse(text: Any = None) -> Any:
    """Return the JSON value the string `text` holds (`$parse`)."""
    if not isinstance(text, str):
        raise StepFunctionsFunctionError(
            f"$parse: the argument must be a string, got {json.dumps(text, default=str)}"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepFunctionsFunctionError(f"$parse: {text!r} is not valid JSON ({exc})") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise StepFunctionsFunctionError(f"$parse: {text!r} is not a JSON number")
    return value


def eval_unavailable(*_args: Any) -> Any:
    """Refuse `$eval`, as Step Functions does."""
    raise StepFunctionsFunctionError(
        "$eval is not available in Step Functions JSONata expressions; use $parse instead"
    )


def step_functions_functions() -> dict[str, Callable[..., Any]]:
    """Return the functions to bind in every expression, by JSONata name (without `$`)."""
    return {
        "partition": partition,
        "range": number_range,
        "hash": hash_value,
        "random": random_number,
        "uuid": new_uuid,
        "parse": parse,
        "eval": eval_unavailable,
    }
