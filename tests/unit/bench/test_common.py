from __future__ import annotations

import os

import pytest

from bench.common import (
    BenchSettings,
    at_least,
    at_most,
    clean_env,
    median,
    percentile,
    summary,
)


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert median(values) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        percentile([1.0], 101)


def test_summary_and_verdicts() -> None:
    stats = summary([3.0, 1.0, 2.0])
    assert stats["median"] == 2.0 and stats["min"] == 1.0 and stats["max"] == 3.0
    assert stats["n"] == 3 and stats["values"] == [3.0, 1.0, 2.0]
    assert at_most(0.9, 1.0) == "met" and at_most(1.1, 1.0) == "missed"
    assert at_least(1.0, 1.0) == "met" and at_least(0.99, 1.0) == "missed"


def test_settings_count_prefers_repeats() -> None:
    assert BenchSettings().count(7) == 7
    assert BenchSettings(smoke=True).count(7, smoke=2) == 2
    assert BenchSettings(smoke=True, repeats=3).count(7) == 3


def test_clean_env_drops_the_variables_that_change_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_S3__BUCKET", "other")
    monkeypatch.setenv("MODEL_SERVER_WORKERS", "8")
    env = clean_env({"EXTRA": "1"})
    assert "MLOPS_S3__BUCKET" not in env and "MODEL_SERVER_WORKERS" not in env
    assert env["EXTRA"] == "1" and env["PATH"] == os.environ["PATH"]
