"""Step Functions activities of a `LocalEngine`: the activities and the tasks waiting for a worker.

An activity Task (``"Resource": "arn:aws:states:REGION:ACCOUNT:activity:NAME"``) waits until a
worker calls ``GetActivityTask`` on that activity, then for the worker's ``SendTaskSuccess`` /
``SendTaskFailure`` / ``SendTaskHeartbeat`` with the token it got
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html).

`ActivityStore` holds the activities (created by ``CreateActivity``, by name, idempotently) and,
per activity, the tasks scheduled and not yet handed to a worker, oldest first. The interpreter
schedules a task with ``store.get(arn).add_task(task)`` (``task.task_token``,
``task.task_input``); `ActivityStore.poll` hands it to one worker. Nothing here imports moto.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from workflow.local.errors import EngineError

# GetActivityTask "holds the connection open for up to 60 seconds"
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetActivityTask.html).
POLL_SECONDS: Final = 60.0
_NAME_FORBIDDEN: Final = frozenset(' <>{}[]?*"#%\\^|~`$&,;:/')


class ActivityError(EngineError):
    """An activity request AWS refuses.

    Attributes:
        code: AWS's error code (``ActivityDoesNotExist``, ``InvalidArn``, ``InvalidName``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ActivityTask:
    """One scheduled activity task: its token and its input (JSON text)."""

    token: str
    input: str


@dataclass
class Activity:
    """One activity: ARN, name, creation date, tags, and the tasks no worker took yet."""

    arn: str
    name: str
    created: dt.datetime
    tags: dict[str, str] = field(default_factory=dict)
    pending: deque[ActivityTask] = field(default_factory=deque)
    wakeup: threading.Condition = field(default_factory=threading.Condition)

    def add_task(self, task: Any) -> None:
        """Queue a task the interpreter scheduled (an object with ``task_token``/``task_input``)."""
        with self.wakeup:
            self.pending.append(ActivityTask(str(task.task_token), str(task.task_input)))
            self.wakeup.notify_all()

    def describe(self) -> dict[str, Any]:
        """The DescribeActivity / ActivityListItem shape."""
        return {"activityArn": self.arn, "name": self.name, "creationDate": self.created}


def check_activity_name(name: Any) -> str:
    """Return ``name`` if AWS accepts it as an activity name, else raise ``InvalidName``.

    The rules of https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateActivity.html:
    1-80 characters, no whitespace, brackets, wildcards, special or control characters.
    """
    text = name if isinstance(name, str) else ""
    bad = [c for c in text if c in _NAME_FORBIDDEN or ord(c) < 32 or 127 <= ord(c) < 160]
    if not 1 <= len(text) <= 80 or bad:
        raise ActivityError(
            "InvalidName",
            f"Invalid Name: '{name}' is not a valid activity name (1-80 characters; no "
            'whitespace, brackets, wildcards or any of "#%\\^|~`$&,;:/)',
        )
    return text


def is_activity_arn(resource: str) -> bool:
    """Return True for ``arn:<partition>:states:<region>:<account>:activity:<name>``."""
    parts = resource.split(":")
    return len(parts) == 7 and parts[0] == "arn" and parts[2] == "states" and parts[5] == "activity"


class ActivityStore:
    """The activities of one engine (thread-safe).

    Args:
        region: Region of the ARNs.
        account_id: Account of the ARNs.
    """

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._activities: dict[str, Activity] = {}

    def arn_of(self, name: str) -> str:
        """Return the ARN of the activity ``name`` in this engine's region and account."""
        return f"arn:aws:states:{self.region}:{self.account_id}:activity:{name}"

    def create(self, name: Any, tags: Mapping[str, str] | None = None) -> Activity:
        """Create an activity, or return the one of that name (tags of a repeat are ignored).

        AWS: "CreateActivity is an idempotent API ... based on the activity name"
        (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateActivity.html).

        Raises:
            ActivityError: ``InvalidName``.
        """
        arn = self.arn_of(check_activity_name(name))
        with self._lock:
            existing = self._activities.get(arn)
            if existing is not None:
                return existing
            activity = Activity(
                arn=arn, name=str(name), created=dt.datetime.now(tz=dt.timezone.utc)
            )
            activity.tags.update(tags or {})
            self._activities[arn] = activity
            return activity

    def get(self, arn: str) -> Activity | None:
        """Return the activity of ``arn``, or None (the interpreter's lookup)."""
        with self._lock:
            return self._activities.get(arn)

    def require(self, arn: Any) -> Activity:
        """Return the activity of ``arn``.

        Raises:
            ActivityError: ``InvalidArn`` (not an activity ARN) or ``ActivityDoesNotExist``.
        """
        text = str(arn or "")
        if not is_activity_arn(text):
            raise ActivityError("InvalidArn", f"Invalid Arn: '{text}' is not an activity ARN")
        activity = self.get(text)
        if activity is None:
            raise ActivityError("ActivityDoesNotExist", f"Activity Does Not Exist: '{text}'")
        return activity

    def list(self) -> list[Activity]:
        """Every activity, oldest first."""
        with self._lock:
            return sorted(self._activities.values(), key=lambda a: a.created)

    def delete(self, arn: Any) -> None:
        """Delete an activity (deleting one that does not exist is not an error on AWS).

        Raises:
            ActivityError: ``InvalidArn``.
        """
        text = str(arn or "")
        if not is_activity_arn(text):
            raise ActivityError("InvalidArn", f"Invalid Arn: '{text}' is not an activity ARN")
        with self._lock:
            self._activities.pop(text, None)

    def poll(
        self, arn: Any, start: Callable[[ActivityTask], bool], timeout: float = POLL_SECONDS
    ) -> ActivityTask | None:
        """Hand the oldest task of an activity to a worker, waiting up to ``timeout`` seconds.

        Args:
            arn: The activity ARN.
            start: Tells the waiting task that a worker took it (records ``ActivityStarted``);
                False when no task waits any more (it timed out or its execution ended), and
                the next task is tried.
            timeout: The longest wait; None comes back when no task was scheduled by then.

        Raises:
            ActivityError: ``InvalidArn`` or ``ActivityDoesNotExist``.
        """
        activity = self.require(arn)
        deadline = time.monotonic() + timeout
        while True:
            with activity.wakeup:
                while not activity.pending:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.get(activity.arn) is not activity:
                        return None
                    activity.wakeup.wait(min(left, 1.0))
                task = activity.pending.popleft()
            if start(task):
                return task


__all__ = [
    "POLL_SECONDS",
    "Activity",
    "ActivityError",
    "ActivityStore",
    "ActivityTask",
    "check_activity_name",
    "is_activity_arn",
]
