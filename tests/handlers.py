"""Loading each Lambda handler the way Lambda does: its own folder on sys.path, its own module."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from asl import ROOT

FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler(function: str) -> ModuleType:
    folder = FUNCTIONS / function
    spec = importlib.util.spec_from_file_location(f"lambda_{function}_app", folder / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def load_model_module(name: str) -> ModuleType:
    """A module of model/ (the training, serving and publishing code), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"model_{name}", ROOT / "model" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())
