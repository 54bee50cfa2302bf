"""Which states and branches of the ASL the tests exercised, read from the executions they ran.

A branch is (state, kind, target) where kind is Next, Default, Choice[i] or Catch[errors]. The
pytest plugin in conftest.py records every execution of the project's state machine (and its
mock-config test-case copies) with the test that ran it; at the end of the session this module
reports each state and branch with the tests that took it, and with ASL_COVERAGE_REQUIRED=1
(as `make test` sets) a state or branch nobody exercised fails the run.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

from asl import load_definition, transitions

Branch = tuple[str, str, str]


def _catch_matches(error_equals: list[str], error: str) -> bool:
    if error in error_equals or "States.ALL" in error_equals:
        return True
    return "States.TaskFailed" in error_equals and error != "States.Timeout"


def taken_branches(definition: dict[str, Any], runs: list[tuple[str, str | None]]) -> set[Branch]:
    """Branches taken by one execution, from its (state name, error) sequence."""
    taken: set[Branch] = set()
    states = definition["States"]
    for (name, error), (following, _) in pairwise(runs):
        state = states.get(name)
        if state is None:
            continue
        if error:
            catcher = next((c for c in state.get("Catch", []) if _catch_matches(c["ErrorEquals"], error)), None)
            if catcher and catcher["Next"] == following:
                taken.add((name, f"Catch{catcher['ErrorEquals']}", following))
                continue
        kinds = [kind for kind, target in transitions(state) if target == following and not kind.startswith("Catch")]
        if kinds:
            taken.add((name, kinds[0], following))
    return taken


class Recorder:
    def __init__(self) -> None:
        self.definition = load_definition()
        self.states: dict[str, set[str]] = defaultdict(set)
        self.branches: dict[Branch, set[str]] = defaultdict(set)

    def record(self, test: str, runs: list[tuple[str, str | None]]) -> None:
        for name, _ in runs:
            if name in self.definition["States"]:
                self.states[name].add(test)
        for branch in taken_branches(self.definition, runs):
            self.branches[branch].add(test)

    def export(self) -> dict[str, Any]:
        """What this process recorded, as JSON, for the process that reports (pytest-xdist's controller)."""
        return {
            "states": {name: sorted(tests) for name, tests in self.states.items()},
            "branches": [[*branch, sorted(tests)] for branch, tests in self.branches.items()],
        }

    def merge(self, exported: dict[str, Any]) -> None:
        for name, tests in exported["states"].items():
            self.states[name].update(tests)
        for name, kind, target, tests in exported["branches"]:
            self.branches[name, kind, target].update(tests)

    def all_branches(self) -> list[Branch]:
        return [
            (name, kind, target)
            for name, state in self.definition["States"].items()
            for kind, target in transitions(state)
        ]

    def gaps(self) -> list[str]:
        missing = [f"state {name!r}" for name in self.definition["States"] if not self.states.get(name)]
        missing += [
            f"branch {n!r} --{k}--> {t!r}" for n, k, t in self.all_branches() if not self.branches.get((n, k, t))
        ]
        return missing

    def report(self) -> str:
        lines = ["ASL coverage: states and branches, and the tests that exercised them", ""]
        for name in self.definition["States"]:
            tests = sorted(self.states.get(name, ()))
            lines.append(
                f"{'ok ' if tests else 'MISSING'} state {name}: {', '.join(t.split('::')[-1] for t in tests[:3])}"
                + (f" (+{len(tests) - 3})" if len(tests) > 3 else "")
            )
            for branch in [b for b in self.all_branches() if b[0] == name]:
                tests = sorted(self.branches.get(branch, ()))
                shown = ", ".join(t.split("::")[-1] for t in tests[:2]) + (
                    f" (+{len(tests) - 2})" if len(tests) > 2 else ""
                )
                lines.append(f"{'   ok' if tests else '   MISSING'} --{branch[1]}--> {branch[2]}: {shown}")
        total = len(self.definition["States"]) + len(self.all_branches())
        lines.append("")
        lines.append(f"{total - len(self.gaps())} of {total} states and branches exercised")
        return "\n".join(lines)


RECORDER = Recorder()
