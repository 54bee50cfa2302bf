"""Reading the state machine definition as a graph, for the static tests and the coverage report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from local_runtime.graph import transitions

ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = ROOT / "statemachine" / "mlops.asl.json"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


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
