"""Step Functions activities on the local API: create, describe, list, delete, GetActivityTask.

The activities are the engine's (`LocalEngine.activities`), so an activity Task of an execution
this API runs waits for a worker that polls ``GetActivityTask`` here and answers with
``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat``. Shapes and error codes:
https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateActivity.html,
API_DescribeActivity.html, API_ListActivities.html, API_DeleteActivity.html,
API_GetActivityTask.html.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from workflow.api.errors import ApiError, require, validation
from workflow.api.wire import page
from workflow.local.activities import POLL_SECONDS, ActivityError, is_activity_arn
from workflow.local.engine import LocalEngine

_MAX_WORKER_NAME = 80
_MAX_TAGS = 50


class Activities:
    """The activity operations over one engine.

    Args:
        engine: The engine whose activity Task states the workers answer.
        poll_seconds: How long ``GetActivityTask`` holds a request without a task (AWS: 60 s).
    """

    def __init__(self, engine: LocalEngine, poll_seconds: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """CreateActivity: idempotent by name (tags of a repeated request are ignored)."""
        tags = body.get("tags") or []
        if not isinstance(tags, list) or len(tags) > _MAX_TAGS:
            raise validation(f"tags must be a list of at most {_MAX_TAGS} key/value pairs")
        with _aws_errors():
            activity = self.engine.activities.create(
                require(body, "name"),
                {str(t.get("key")): str(t.get("value", "")) for t in tags},
            )
        return {"activityArn": activity.arn, "creationDate": activity.created}

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeActivity."""
        with _aws_errors():
            return self.engine.activities.require(require(body, "activityArn")).describe()

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListActivities, oldest first, with ``maxResults``/``nextToken`` paging."""
        chunk, token = page(self.engine.activities.list(), body, "activities")
        return {"activities": [a.describe() for a in chunk], "nextToken": token}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeleteActivity."""
        with _aws_errors():
            self.engine.activities.delete(require(body, "activityArn"))
        return {}

    def get_task(self, body: dict[str, Any]) -> dict[str, Any]:
        """GetActivityTask: a task's token and input, or no token when none came in time."""
        worker = body.get("workerName")
        if worker is not None and (not isinstance(worker, str) or len(worker) > _MAX_WORKER_NAME):
            raise validation(
                f"1 validation error detected: Value '{worker}' at 'workerName' failed to "
                f"satisfy constraint: Member must have length less than or equal to "
                f"{_MAX_WORKER_NAME}"
            )
        with _aws_errors():
            task = self.engine.get_activity_task(
                str(require(body, "activityArn")), worker, self.poll_seconds
            )
        if task is None:
            return {}
        return {"taskToken": task.token, "input": task.input}

    # Tags of activities (TagResource, UntagResource, ListTagsForResource) -------------------
    def owns(self, body: dict[str, Any]) -> bool:
        """Return True when the request's ``resourceArn`` is an activity ARN."""
        return is_activity_arn(str(body.get("resourceArn") or ""))

    def tag(self, body: dict[str, Any]) -> dict[str, Any]:
        """TagResource on an activity."""
        activity = self._tagged(body)
        activity.tags.update({t["key"]: t.get("value", "") for t in body.get("tags") or []})
        return {}

    def untag(self, body: dict[str, Any]) -> dict[str, Any]:
        """UntagResource on an activity."""
        activity = self._tagged(body)
        for key in body.get("tagKeys") or []:
            activity.tags.pop(key, None)
        return {}

    def list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListTagsForResource of an activity."""
        activity = self._tagged(body)
        return {"tags": [{"key": k, "value": v} for k, v in activity.tags.items()]}

    def _tagged(self, body: dict[str, Any]) -> Any:
        arn = str(require(body, "resourceArn"))
        activity = self.engine.activities.get(arn)
        if activity is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        return activity


@contextlib.contextmanager
def _aws_errors() -> Iterator[None]:
    """Turn an `ActivityError` into the `ApiError` of the same AWS code."""
    try:
        yield
    except ActivityError as exc:
        raise ApiError(exc.code, str(exc)) from exc


__all__ = ["Activities"]
