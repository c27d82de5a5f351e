"""Retry until a deadline: success after early failures, the last error at the deadline."""

from __future__ import annotations

import pytest

from workflow.retry import retry_until_deadline


def test_succeeds_after_early_failures() -> None:
    calls = []

    def action() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not waiting on the token yet")

    assert retry_until_deadline(action, seconds=5, pause=0.01) is None
    assert len(calls) == 3


def test_returns_the_last_error_at_the_deadline() -> None:
    calls = []

    def action() -> None:
        calls.append(1)
        raise RuntimeError(f"attempt {len(calls)}")

    error = retry_until_deadline(action, seconds=0.05, pause=0.01)
    assert isinstance(error, RuntimeError) and str(error) == f"attempt {len(calls)}"
    assert len(calls) >= 2


def test_other_errors_propagate_at_once() -> None:
    def action() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        retry_until_deadline(action, seconds=5, pause=0.01, errors=RuntimeError)
