"""Fixtures of the notebook helper tests: sessions on a tmp project, a tiny COCO data set."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.notebook_session import make_session, project  # noqa: F401


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set: train 3, validation 0, test 2 images of 64 px (seed 1)."""
    from mask_r_cnn.synthetic import generate

    root = tmp_path_factory.mktemp("coco")
    generate(root, train=3, validation=0, test=2, size=64, seed=1)
    return root


@pytest.fixture
def make_events() -> Callable[[list[tuple[float, str, str | None]]], list[dict[str, Any]]]:
    """Build an execution history from ``(seconds, type, state name or None)`` triples."""

    def make(items: list[tuple[float, str, str | None]]) -> list[dict[str, Any]]:
        origin = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        events = []
        for number, (seconds, kind, name) in enumerate(items, start=1):
            event: dict[str, Any] = {
                "id": number,
                "type": kind,
                "timestamp": origin + dt.timedelta(seconds=seconds),
            }
            if kind.endswith("StateEntered"):
                event["stateEnteredEventDetails"] = {"name": name}
            elif kind.endswith("StateExited"):
                event["stateExitedEventDetails"] = {"name": name}
            elif kind.endswith("Failed"):
                event["taskFailedEventDetails"] = {"error": "Boom", "cause": "it broke"}
            elif kind == "TaskScheduled":
                event["taskScheduledEventDetails"] = {
                    "resourceType": "sagemaker",
                    "resource": "createTrainingJob.sync",
                }
            events.append(event)
        return events

    return make
