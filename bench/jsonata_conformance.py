"""JSONata conformance: the official JSONata test suite against the engine the local Step Functions runs.

.venv/bin/python bench/jsonata_conformance.py [--group NAME ...] [--list N]

The suite is vendored in bench/jsonata-test-suite/ at JSONata v2.0.6, the version AWS Step Functions
implements, and run through local_runtime.jsonata_engine.evaluate, the function install() puts in moto:
jsonata-python plus AWS's functions. A case passes as the suite's own runner decides: the same result
(deep equality, order aside where the case says "unordered"), undefined, or the expected error code.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "bench" / "jsonata-test-suite"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import say  # noqa: E402

from local_runtime.jsonata_engine import UNDEFINED, JSONataError, evaluate  # noqa: E402

TARGET = 0.98  # issue 14
CASE_SECONDS = 10.0  # a case's hard limit, on top of the "timelimit" some cases set for the engine itself
EVAL = "$eval, which AWS leaves out of JSONata, and so does the engine"


@dataclass(frozen=True)
class Case:
    name: str  # group/file[#index]
    spec: dict[str, Any]


def cases(groups: list[str] | None = None) -> Iterator[Case]:
    for group in sorted(path for path in (SUITE / "groups").iterdir() if path.is_dir()):
        if groups and group.name not in groups:
            continue
        for file in sorted(group.glob("*.json")):
            spec = json.loads(file.read_text())
            specs = spec if isinstance(spec, list) else [spec]
            for index, one in enumerate(specs):
                if "expr-file" in one:
                    one = {**one, "expr": (group / one["expr-file"]).read_text()}
                suffix = f"#{index}" if len(specs) > 1 else ""
                yield Case(f"{group.name}/{file.stem}{suffix}", one)


def same(actual: Any, expected: Any) -> bool:
    """JavaScript's deep equality on JSON: true is not 1, 1 is 1.0."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[k], expected[k]) for k in actual)
        )
    return type(actual) is type(expected) and actual == expected


class _CaseTimeout(BaseException):
    """Outside Exception, so that evaluate() cannot mistake it for the expression failing."""


def _interrupt(*_: Any) -> None:
    raise _CaseTimeout


def check(case: Case, datasets: dict[str, Any]) -> str | None:
    """None when the case passes, else why not, worded to group alike failures together."""
    spec = case.spec
    if "data" in spec:
        data = spec["data"]
    elif spec.get("dataset"):
        data = datasets[spec["dataset"]]
    else:
        data = UNDEFINED
    expected_code = spec.get("code") or spec.get("error", {}).get("code")
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        result = evaluate(
            spec["expr"],
            data,
            spec.get("bindings") or {},
            timeout_ms=spec.get("timelimit"),
            max_depth=spec.get("depth"),
        )
    except _CaseTimeout:
        return f"ran past {CASE_SECONDS:g} s"
    except JSONataError as error:
        code = error.code
        if "timelimit" in spec and code in ("D1011", "D1012"):
            code = "U1001"  # the suite's runner boxes such cases itself and raises U1001; here jsonata-python does
        if expected_code and code == expected_code:
            return None
        if "eval is not available in Step Functions" in str(error):
            return EVAL
        got = code or str(error).split(":")[0]
        return f"error {got} where {'error ' + expected_code if expected_code else 'a result'} was expected"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if expected_code:
        return f"no error where error {expected_code} was expected"
    if "undefinedResult" in spec:
        return None if result is UNDEFINED else "a value where undefined was expected"
    if result is UNDEFINED:
        return "undefined where a value was expected"
    if spec.get("unordered") and isinstance(result, list):
        key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
        return None if same(sorted(result, key=key), sorted(spec["result"], key=key)) else "a different result"
    return None if same(result, spec["result"]) else "a different result"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", help="only this group of the suite (repeatable)")
    parser.add_argument("--list", type=int, default=8, metavar="N", help="failing cases to show per reason")
    args = parser.parse_args(argv)
    datasets = {path.stem: json.loads(path.read_text()) for path in (SUITE / "datasets").glob("*.json")}
    signal.signal(signal.SIGALRM, _interrupt)
    started = time.perf_counter()
    failures: dict[str, list[str]] = defaultdict(list)
    total = 0
    # jsonata-python prints a line for some failed calls ("Proc not found"); the report goes to the terminal.
    with contextlib.redirect_stdout(io.StringIO()):
        for case in cases(args.group):
            total += 1
            reason = check(case, datasets)
            if reason is not None:
                failures[reason].append(case.name)
    seconds = time.perf_counter() - started
    failed = sum(len(names) for names in failures.values())
    passed = total - failed
    rate = passed / total if total else 0.0
    # The same figure over the cases Step Functions' JSONata accepts at all.
    aws_total = total - len(failures.get(EVAL, []))
    aws_rate = passed / aws_total if aws_total else 0.0
    say(f"JSONata test suite v2.0.6, {total} cases, through local_runtime.jsonata_engine.evaluate in {seconds:.1f} s")
    verdict = "met" if rate >= TARGET else "NOT met"
    say(f"  passed {passed} / {total} = {rate:.2%} (target {TARGET:.0%}: {verdict})")
    say(f"  without the {total - aws_total} cases of $eval, which AWS refuses: {passed} / {aws_total} = {aws_rate:.2%}")
    by_group = Counter(name.split("/")[0] for names in failures.values() for name in names)
    for reason, names in sorted(failures.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(names[: args.list]) + (", ..." if len(names) > args.list else "")
        say(f"  {len(names):4d}  {reason}: {shown}")
    return {
        "suite": "jsonata-js test/test-suite at v2.0.6",
        "cases": total,
        "passed": passed,
        "pass_rate": round(rate, 4),
        "pass_rate_without_eval": round(aws_rate, 4),
        "target": TARGET,
        "seconds": round(seconds, 1),
        "failures_by_reason": {reason: sorted(names) for reason, names in failures.items()},
        "failures_by_group": dict(by_group.most_common()),
    }


if __name__ == "__main__":
    main()
