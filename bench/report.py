"""Printing benchmark tables to the terminal, even while handler and service logs are redirected to a file."""

from __future__ import annotations

import sys
from typing import Any


def say(*parts: Any) -> None:
    print(*parts, file=sys.__stdout__, flush=True)
