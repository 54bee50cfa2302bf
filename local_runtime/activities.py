"""Step Functions activities offline: moto keeps activities (CreateActivity, DescribeActivity) but answers
GetActivityTask with an error, and its engine has no worker to hand a task to.

When a definition is registered, each activity Task state becomes a callback to a local provider (see
``as_activity_task``). The provider queues the task token and the state's input under the activity's ARN and
sends no outcome; a worker's ``GetActivityTask`` (answered by the gateway) takes it from the queue, and the
worker's ``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat`` reach the waiting state through its token.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from typing import Any

from local_runtime.lambdas import NO_ANSWER

PROVIDER = "local-activity-task"
ACTIVITY = re.compile(r"^arn:aws[\w-]*:states:[\w-]+:\d{12}:activity:[\w.-]+$")
# GetActivityTask's long poll: Step Functions holds the request up to 60 seconds before answering with no task.
POLL_SECONDS = 60.0


def is_activity(resource: str) -> bool:
    return bool(ACTIVITY.match(resource))


def as_activity_task(state: dict[str, Any], jsonata: bool) -> None:
    """Turns an activity Task into a callback to the activity provider, keeping what the worker is given: the
    state's effective input (after Parameters or Arguments)."""
    activity = state["Resource"]
    state["Resource"] = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    if jsonata:
        given = state.pop("Arguments", "{% $states.input %}")
        payload = {"activityArn": activity, "input": given, "taskToken": "{% $states.context.Task.Token %}"}
        state["Arguments"] = {"FunctionName": PROVIDER, "Payload": payload}
        return
    parameters = state.pop("Parameters", None)
    given = {"input.$": "$"} if parameters is None else {"input": parameters}
    state["Parameters"] = {
        "FunctionName": PROVIDER,
        "Payload": {"activityArn": activity, **given, "taskToken.$": "$$.Task.Token"},
    }


class Activities:
    """The tasks waiting for a worker, by activity ARN, in the order their states reached them."""

    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._queues: dict[str, queue.Queue[dict[str, str]]] = {}
        self._lock = threading.Lock()

    def _queue(self, activity_arn: str) -> queue.Queue[dict[str, str]]:
        with self._lock:
            return self._queues.setdefault(activity_arn, queue.Queue())

    def schedule(self, request: dict[str, Any], caller: Any = None) -> Any:
        """The provider for activity states: queues the task; the worker answers its token, not this call."""
        task = {"taskToken": request["taskToken"], "input": json.dumps(request["input"], separators=(",", ":"))}
        self._queue(request["activityArn"]).put(task)
        return NO_ANSWER

    def take(self, activity_arn: str) -> dict[str, str] | None:
        """GetActivityTask: the oldest waiting task of the activity, waiting up to the poll time for one."""
        try:
            return self._queue(activity_arn).get(timeout=self.poll_seconds)
        except queue.Empty:
            return None
