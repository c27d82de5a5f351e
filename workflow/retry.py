"""Retry an action until it succeeds or a deadline passes (on tenacity).

For calls that may come a little early, e.g. answering a task token before the engine waits on it
(the local CodeBuild and approval stand-ins): `retry_until_deadline` calls the action again every
``pause`` seconds for at most ``seconds``, and returns the last error instead of raising it, so
that a caller on a background thread can log it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed


def retry_until_deadline(
    action: Callable[[], Any],
    *,
    seconds: float,
    pause: float,
    errors: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> BaseException | None:
    """Call ``action`` until it returns, for at most ``seconds``; return the last error or None.

    Args:
        action: What to call; any return value means success.
        seconds: The deadline, from the first call.
        pause: Seconds between calls.
        errors: The errors that mean "try again"; others propagate at once.

    Returns:
        None when ``action`` succeeded, else the error of its last call.
    """
    retrying = Retrying(
        stop=stop_after_delay(seconds),
        wait=wait_fixed(pause),
        retry=retry_if_exception_type(errors),
    )
    try:
        retrying(action)
    except RetryError as exc:
        return exc.last_attempt.exception()
    return None


__all__ = ["retry_until_deadline"]
