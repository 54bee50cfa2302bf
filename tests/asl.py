"""Reading the state machine definition as a graph, for the static tests and the coverage report."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = ROOT / "statemachine" / "mlops.asl.json"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def transitions(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yields (kind, target) for every way a state can hand over: Next, Default, a Choice rule, a Catch."""
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for index, rule in enumerate(state.get("Choices", [])):
        yield f"Choice[{index}]", rule["Next"]
    for catcher in state.get("Catch", []):
        yield f"Catch{catcher['ErrorEquals']}", catcher["Next"]


def reachable(definition: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [definition["StartAt"]]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(target for _, target in transitions(definition["States"][name]))
    return seen


def predecessors(definition: dict[str, Any], target: str) -> set[str]:
    return {name for name, state in definition["States"].items() for _, t in transitions(state) if t == target}
