"""Mocked service integrations in the format AWS documents for Step Functions Local.

    {"StateMachines": {"<machine name>": {"TestCases": {"<case>": {"<state>": "<response>"}}}},
     "MockedResponses": {"<response>": {"0": {"Return": {...}}, "1-2": {"Throw": {"Error": "...", "Cause": "..."}}}}}

A run selects a test case as with Step Functions Local: ``StartExecution`` on
``arn:...:stateMachine:<name>#<case>``. The local runtime then registers a copy of the machine
(named ``<name>--<case>``; the gateway shows its executions under the original machine) whose mocked
states, wherever they are (top level, Parallel branches, Map iterations), become callbacks to a built-in
provider instead of their service. The provider answers each invocation from the file, counting
invocations per execution and state so that ranges such as ``"1-2"`` (and therefore Retry) behave as
documented. States the test case does not mock run for real.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local_runtime.lambdas import NO_ANSWER, ProviderError

PROVIDER = "local-mocked-integration"
# Step Functions Local fails the execution when an invocation has no mocked response. A callback failure
# named States.Runtime does the same in moto's engine: the execution fails at once, and no Retry or Catch
# (not even States.ALL, as on AWS) handles it.
MISSING_RESPONSE_ERROR = "States.Runtime"
# The States.* errors a mocked Throw can raise: the engine raises these names only itself, so the copy of the
# machine provokes the condition (a Task that times out) instead of naming it.
PROVOKED_ERRORS = {"States.Timeout"}
# How long a mocked task waits before it times out, when a response throws States.Timeout.
MOCK_TIMEOUT_SECONDS = 1


class MockConfigError(ValueError):
    """The mock file or the selected test case cannot be used; the message says why."""


class MockConfig:
    def __init__(self, document: dict[str, Any]) -> None:
        self.machines: dict[str, Any] = {}
        self.responses: dict[str, Any] = {}
        self._counts: dict[tuple[str, str], int] = {}
        # Execution ARN -> the cause of its missing-response failure, which moto's engine words its own way.
        self.missing: dict[str, str] = {}
        self._lock = threading.Lock()
        self.add(document)

    def add(self, document: dict[str, Any]) -> None:
        """Adds the machines and responses of another mock config (a test's own machines, for example)."""
        machines = {**self.machines, **document.get("StateMachines", {})}
        responses = {**self.responses, **document.get("MockedResponses", {})}
        for machine, spec in machines.items():
            for case, states in spec.get("TestCases", {}).items():
                for state, response in states.items():
                    if response not in responses:
                        raise MockConfigError(f"{machine}#{case}: state {state!r} names unknown response {response!r}")
        for name, entries in responses.items():
            for key, entry in entries.items():
                _range(key)
                if ("Return" in entry) == ("Throw" in entry):
                    raise MockConfigError(f"response {name!r}[{key}] needs exactly one of Return or Throw")
                error = entry.get("Throw", {}).get("Error", "")
                if error.startswith("States.") and error not in PROVOKED_ERRORS:
                    raise MockConfigError(
                        f"response {name!r}[{key}]: {error} cannot be mocked locally "
                        f"(of the States.* errors, only {', '.join(sorted(PROVOKED_ERRORS))} can)"
                    )
        self.machines, self.responses = machines, responses

    @classmethod
    def load(cls, path: Path) -> MockConfig:
        return cls(json.loads(path.read_text()))

    def mocked_states(self, machine: str, case: str) -> dict[str, str]:
        try:
            return self.machines[machine]["TestCases"][case]
        except KeyError:
            raise MockConfigError(f"no test case {case!r} for state machine {machine!r} in the mock config") from None

    def rewrite(self, definition: dict[str, Any], machine: str, case: str) -> dict[str, Any]:
        """A copy of the definition whose mocked Task states, at any depth, call the mock provider."""
        mocked = self.mocked_states(machine, case)
        rewritten = copy.deepcopy(definition)
        found = {name: (state, language) for name, state, language in _all_states(rewritten)}
        missing = sorted(set(mocked) - set(found))
        if missing:
            raise MockConfigError(f"{machine}#{case} mocks states the machine does not have: {missing}")
        for name, response in mocked.items():
            state, language = found[name]
            if state["Type"] != "Task":
                raise MockConfigError(
                    f"{machine}#{case}: {name!r} is a {state['Type']} state; only Task states are mocked"
                )
            mock = {"machine": machine, "testCase": case, "resource": state["Resource"]}
            _as_mock_task(state, mock, jsonata=language == "JSONata")
            throws = {entry.get("Throw", {}).get("Error") for entry in self.responses[response].values()}
            if "States.Timeout" in throws:
                # The provider leaves those invocations unanswered; a short timeout turns that into States.Timeout.
                for field in ("TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath"):
                    state.pop(field, None)
                state["TimeoutSeconds"] = MOCK_TIMEOUT_SECONDS
        return rewritten

    def answer(self, request: dict[str, Any], caller: Any = None) -> Any:
        """The provider: the mocked response for this invocation of the state in this execution."""
        mock = request["mock"]
        response_name = self.mocked_states(mock["machine"], mock["testCase"])[mock["state"]]
        key = (mock["executionArn"], mock["state"])
        with self._lock:
            index = self._counts.get(key, 0)
            self._counts[key] = index + 1
        for range_key, entry in self.responses[response_name].items():
            low, high = _range(range_key)
            if low <= index <= high:
                if "Throw" in entry:
                    if entry["Throw"]["Error"] in PROVOKED_ERRORS:
                        return NO_ANSWER
                    raise ProviderError(entry["Throw"]["Error"], entry["Throw"].get("Cause", ""))
                return entry["Return"]
        cause = f"{response_name} has no response for invocation {index} of {mock['state']!r}"
        self.missing[mock["executionArn"]] = cause
        raise ProviderError(MISSING_RESPONSE_ERROR, cause)


def _as_mock_task(state: dict[str, Any], mock: dict[str, Any], jsonata: bool) -> None:
    """Turns a Task into a callback to the mock provider. The state's own Parameters or Arguments are still
    evaluated, as Step Functions Local does, and travel with the request so the history can show them."""
    state["Resource"] = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    if jsonata:
        arguments = state.pop("Arguments", "{% $states.input %}")
        context = {"state": "{% $states.context.State.Name %}", "executionArn": "{% $states.context.Execution.Id %}"}
        payload = {"mock": {**mock, **context}, "parameters": arguments}
        payload["taskToken"] = "{% $states.context.Task.Token %}"
        state["Arguments"] = {"FunctionName": PROVIDER, "Payload": payload}
        return
    parameters = state.pop("Parameters", None)
    context = {"state.$": "$$.State.Name", "executionArn.$": "$$.Execution.Id"}
    given = {"parameters.$": "$"} if parameters is None else {"parameters": parameters}
    payload = {"mock": {**mock, **context}, **given, "taskToken.$": "$$.Task.Token"}
    state["Parameters"] = {"FunctionName": PROVIDER, "Payload": payload}


def _all_states(definition: dict[str, Any], language: str = "JSONPath") -> Iterator[tuple[str, dict[str, Any], str]]:
    """Every state of a definition with its query language: the top level, Parallel branches, Map iterations."""
    language = definition.get("QueryLanguage", language)
    for name, state in definition.get("States", {}).items():
        state_language = state.get("QueryLanguage", language)
        yield name, state, state_language
        for branch in state.get("Branches", []):
            yield from _all_states(branch, state_language)
        for field in ("ItemProcessor", "Iterator"):
            if field in state:
                yield from _all_states(state[field], state_language)


def _range(key: str) -> tuple[int, int]:
    try:
        low, _, high = key.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise MockConfigError(f"invocation key {key!r} must be a number or a range such as '1-2'") from None


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives an execution of a machine."""
    return f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class TestCaseArns:
    """Which machines are test-case copies of which, so the gateway can show their executions as Step Functions
    Local does: as executions of the original machine (``...:execution:<machine>:<name>``)."""

    def __init__(self) -> None:
        self.machines: dict[str, str] = {}  # copy's ARN -> original machine's ARN
        self._executions: dict[str, str] = {}  # original-style execution ARN -> the copy's execution ARN
        self._lock = threading.Lock()

    def add_machine(self, copy_arn: str, original_arn: str) -> None:
        with self._lock:
            self.machines[copy_arn] = original_arn

    def add_execution(self, copy_execution_arn: str) -> str:
        """Records an execution of a copy; returns the ARN it has as the original machine's execution."""
        original = self.as_original(copy_execution_arn.encode()).decode()
        with self._lock:
            self._executions[original] = copy_execution_arn
        return original

    def copy_execution(self, arn: str) -> str | None:
        """The copy's execution ARN for an execution ARN of the original machine, if it is a test case's."""
        return self._executions.get(arn)

    def copies_of(self, machine_arn: str) -> list[str]:
        return [copy for copy, original in self.machines.items() if original == machine_arn]

    def as_original(self, body: bytes) -> bytes:
        """A response with every ARN of a copy (machine or execution) replaced by the original machine's."""
        text = body.decode()
        for copy_arn, original_arn in list(self.machines.items()):
            copy_name, original_name = copy_arn.rsplit(":", 1)[1], original_arn.rsplit(":", 1)[1]
            text = text.replace(f":execution:{copy_name}:", f":execution:{original_name}:")
            # A machine ARN ends where a name character cannot follow (case "A" must not touch case "AB").
            text = re.sub(re.escape(copy_arn) + r"(?![\w-])", original_arn, text)
        return text.encode()


def resource_parts(resource: str) -> tuple[str, str]:
    """(resourceType, resource) as a history event names a Task's Resource: ("lambda", "invoke")."""
    if resource.startswith("arn:aws:states:::"):
        service, _, action = resource.removeprefix("arn:aws:states:::").rpartition(":")
        return service, action
    return resource.split(":")[2] if resource.count(":") > 2 else "", resource


def mocked_task_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history as Step Functions Local shows it: a mocked Task's events name its own resource and
    parameters, not the callback to the mock provider; without its TaskSubmitted, unless it waits for a token."""
    kept: list[dict[str, Any]] = []
    new_ids: dict[int, int] = {0: 0}
    mocked: dict[int, tuple[str, str, bool]] = {}  # event id -> resourceType, resource, waits for a token
    for event in events:
        event = copy.deepcopy(event)
        previous = event.get("previousEventId", 0)
        details = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
        if event["type"] == "TaskScheduled":
            parameters = json.loads(details.get("parameters") or "{}")
            payload = parameters.get("Payload") if isinstance(parameters, dict) else None
            if parameters.get("FunctionName") == PROVIDER and isinstance(payload, dict) and "mock" in payload:
                resource = payload["mock"]["resource"]
                mocked[event["id"]] = (*resource_parts(resource), resource.endswith(".waitForTaskToken"))
                details["parameters"] = json.dumps(payload.get("parameters"), separators=(",", ":"))
        elif previous in mocked and event["type"].startswith("Task") and "resource" in details:
            mocked[event["id"]] = mocked[previous]
            if event["type"] == "TaskSubmitted" and not mocked[previous][2]:
                new_ids[event["id"]] = new_ids[previous]
                continue
        if event["id"] in mocked:
            details["resourceType"], details["resource"] = mocked[event["id"]][:2]
        new_ids[event["id"]] = len(kept) + 1
        event["id"] = new_ids[event["id"]]
        if "previousEventId" in event:
            event["previousEventId"] = new_ids.get(previous, previous)
        kept.append(event)
    return kept
