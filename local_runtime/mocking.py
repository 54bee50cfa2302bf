"""Mocked service integrations in the format AWS documents for Step Functions Local.

    {"StateMachines": {"<machine name>": {"TestCases": {"<case>": {"<state>": "<response>"}}}},
     "MockedResponses": {"<response>": {"0": {"Return": {...}}, "1-2": {"Throw": {"Error": "...", "Cause": "..."}}}}}

A run selects a test case as with Step Functions Local: ``StartExecution`` on
``arn:...:stateMachine:<name>#<case>``. The local runtime then registers a copy of the machine
(named ``<name>--<case>``) whose mocked states call a built-in provider instead of their service;
that provider answers each invocation from the file, counting invocations per execution and state
so that ranges such as ``"1-2"`` (and therefore Retry) behave as documented. States the test case
does not mock run for real.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from local_runtime.lambdas import ProviderError

PROVIDER = "local-mocked-integration"


class MockConfigError(ValueError):
    """The mock file or the selected test case cannot be used; the message says why."""


class MockConfig:
    def __init__(self, document: dict[str, Any]) -> None:
        self.machines = document.get("StateMachines", {})
        self.responses = document.get("MockedResponses", {})
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        for machine, spec in self.machines.items():
            for case, states in spec.get("TestCases", {}).items():
                for state, response in states.items():
                    if response not in self.responses:
                        raise MockConfigError(f"{machine}#{case}: state {state!r} names unknown response {response!r}")
        for name, entries in self.responses.items():
            for key, entry in entries.items():
                _range(key)
                if ("Return" in entry) == ("Throw" in entry):
                    raise MockConfigError(f"response {name!r}[{key}] needs exactly one of Return or Throw")
                if "Throw" in entry and entry["Throw"].get("Error", "").startswith("States."):
                    # The local engine reserves States.* names; a Lambda-backed mock cannot raise them.
                    raise MockConfigError(
                        f"response {name!r}[{key}]: {entry['Throw']['Error']} cannot be mocked locally"
                    )

    @classmethod
    def load(cls, path: Path) -> MockConfig:
        return cls(json.loads(path.read_text()))

    def mocked_states(self, machine: str, case: str) -> dict[str, str]:
        try:
            return self.machines[machine]["TestCases"][case]
        except KeyError:
            raise MockConfigError(f"no test case {case!r} for state machine {machine!r} in the mock config") from None

    def rewrite(self, definition: dict[str, Any], machine: str, case: str) -> dict[str, Any]:
        """A copy of the definition whose mocked Task states call the mock provider."""
        mocked = self.mocked_states(machine, case)
        states = definition["States"]
        missing = sorted(set(mocked) - set(states))
        if missing:
            raise MockConfigError(f"{machine}#{case} mocks states the machine does not have: {missing}")
        copy = json.loads(json.dumps(definition))
        for name in mocked:
            state = copy["States"][name]
            if state["Type"] != "Task":
                raise MockConfigError(
                    f"{machine}#{case}: {name!r} is a {state['Type']} state; only Task states are mocked"
                )
            state["Resource"] = f"arn:aws:lambda:us-east-1:123456789012:function:{PROVIDER}"
            if state.get("QueryLanguage", definition.get("QueryLanguage")) == "JSONata":
                state["Arguments"] = {
                    "machine": machine,
                    "testCase": case,
                    "state": "{% $states.context.State.Name %}",
                    "executionArn": "{% $states.context.Execution.Id %}",
                }
            else:
                state["Parameters"] = {
                    "machine": machine,
                    "testCase": case,
                    "state.$": "$$.State.Name",
                    "executionArn.$": "$$.Execution.Id",
                }
        return copy

    def answer(self, request: dict[str, Any], caller: Any = None) -> Any:
        """The provider: the mocked response for this invocation of the state in this execution."""
        response_name = self.mocked_states(request["machine"], request["testCase"])[request["state"]]
        key = (request["executionArn"], request["state"])
        with self._lock:
            index = self._counts.get(key, 0)
            self._counts[key] = index + 1
        for range_key, entry in self.responses[response_name].items():
            low, high = _range(range_key)
            if low <= index <= high:
                if "Throw" in entry:
                    raise ProviderError(entry["Throw"]["Error"], entry["Throw"].get("Cause", ""))
                return entry["Return"]
        raise ProviderError(
            "MockedResponseMissing",
            f"{response_name} has no response for invocation {index} of {request['state']!r}",
        )


def _range(key: str) -> tuple[int, int]:
    try:
        low, _, high = key.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise MockConfigError(f"invocation key {key!r} must be a number or a range such as '1-2'") from None
