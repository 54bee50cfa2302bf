"""Following an execution through its history: which states ran, for how long, and how they ended.

Works the same against the local stack and against AWS: it only reads GetExecutionHistory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FAILURE_SUFFIXES = ("Failed", "TimedOut", "Aborted")


@dataclass
class StateRun:
    name: str
    state_type: str
    entered: datetime
    exited: datetime | None = None
    error: str | None = None
    cause: str | None = None
    # Errors of attempts that a Retry then repeated; ``error`` is only the one that ended the state.
    retried: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None

    @property
    def status(self) -> str:
        if self.exited is None:
            return "running"
        return "caught" if self.error else "succeeded"


@dataclass
class ExecutionView:
    """The states of one execution, rebuilt from its history events."""

    states: list[StateRun] = field(default_factory=list)
    status: str = "RUNNING"
    error: str | None = None
    cause: str | None = None
    started: datetime | None = None
    stopped: datetime | None = None

    def apply(self, event: dict[str, Any]) -> StateRun | None:
        """Folds one history event in; returns the state it entered or finished, if any."""
        kind: str = event["type"]
        if kind == "ExecutionStarted":
            self.started = event["timestamp"]
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            self.stopped = event["timestamp"]
            details = event.get("executionFailedEventDetails") or event.get("executionTimedOutEventDetails") or {}
            self.error, self.cause = details.get("error"), details.get("cause")
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            run = StateRun(details["name"], kind.removesuffix("StateEntered"), event["timestamp"])
            self.states.append(run)
            return run
        current = self.states[-1] if self.states else None
        if current is None:
            return None
        if kind.endswith(FAILURE_SUFFIXES) and not kind.startswith("Execution"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            current.error, current.cause = details.get("error"), details.get("cause")
        elif kind.endswith("Succeeded") and current.error and current.exited is None:
            current.retried.append(current.error)
            current.error = current.cause = None
        if kind.endswith("StateExited"):
            current.exited = event["timestamp"]
            return current
        if kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted") and current.exited is None:
            current.exited = event["timestamp"]
            current.error = current.error or self.error
            current.cause = current.cause or self.cause
            return current
        return None

    def by_name(self) -> dict[str, StateRun]:
        """The latest run of each state (a state runs more than once in a loop)."""
        return {run.name: run for run in self.states}


def follow(
    sfn: Any,
    execution_arn: str,
    on_change: Callable[[StateRun], None] = lambda run: None,
    on_tick: Callable[[ExecutionView], bool] = lambda view: False,
    poll_seconds: float = 0.2,
    timeout: float = 3600,
) -> ExecutionView:
    """Polls the history until the execution stops (or ``on_tick`` returns True), reporting each change."""
    view = ExecutionView()
    seen = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = history(sfn, execution_arn)
        for event in events[seen:]:
            changed = view.apply(event)
            if changed:
                on_change(changed)
        seen = len(events)
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING" and view.stopped is not None:
            view.status = status
            return view
        if on_tick(view):
            return view
        time.sleep(poll_seconds)
    raise TimeoutError(f"{execution_arn} still running after {timeout:g}s")


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events
