"""Test suite time: `make test`'s pytest run (on TEST_WORKERS processes, as make passes it), total and per
test file, from pytest's own JUnit timings; per-file seconds are each file's own, shared cores included."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

from report import say

ROOT = Path(__file__).resolve().parent.parent


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
             "-n", os.environ.get("TEST_WORKERS", "2"), "--dist", "loadscope"],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "ASL_COVERAGE_REQUIRED": "1"}, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        per_file: dict[str, float] = defaultdict(float)
        # The report is the one pytest just wrote for this run, not outside input.
        for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
            module = case.get("classname", "").split(".")[-1]
            per_file[f"tests/{module}.py"] += float(case.get("time", 0))
    say(f"pytest: {wall:.1f}s wall on {os.environ.get('TEST_WORKERS', '2')} workers, exit {result.returncode}")
    for name, seconds in sorted(per_file.items(), key=lambda kv: -kv[1]):
        say(f"  {name:40} {seconds:>7.1f}s")
    return {"wall_seconds": wall, "exit_code": result.returncode, "per_file_seconds": dict(per_file)}
