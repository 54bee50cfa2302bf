"""Runs three static security scanners on CloudFormation templates and reads what they report.

- cfn-lint from .venv, with every rule: informational and experimental ones included, strict options on;
- checkov from .venv-scan (its pins conflict with requirements-dev.txt);
- cfn-guard 3.1.1 from .venv-scan/guard with AWS Control Tower's proactive controls (scripts/install_scanners.py).

All three run at once, each over every template in one process, offline: HOME and the working folder are an
empty folder (no .cfnlintrc or .checkov.yaml applies) and the environment is built here, not inherited.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
SCAN_VENV = ROOT / ".venv-scan"
CHECKOV = SCAN_VENV / "bin" / "checkov"
GUARD = SCAN_VENV / "guard" / "cfn-guard"
CONTROL_TOWER_RULES = SCAN_VENV / "guard" / "control-tower"

CFN_LINT_OPTIONS = (
    "--include-checks", "I", "--include-experimental", "--format", "json",
    "--configure-rule", "E3012:strict=true", "I3042:region=true", "I3042:accountId=true",
)  # fmt: skip
# Metadata keys through which the scanners would skip findings themselves; the tests do the accounting instead.
SUPPRESSION_KEYS = ("cfn-lint", "checkov", "guard", "cfn_nag")
CFN_LINT_EXIT_CODES = {0, 2, 4, 6, 8, 10, 12, 14}  # bit 2: errors, 4: warnings, 8: informational
CHECKOV_EXIT_CODES = {0, 1}
GUARD_EXIT_CODES = {0, 19}  # 19: some rule is not compliant
SETUP_HINT = "run `make test` (or `make .venv-scan/.installed`) to install the scanners"


@dataclass(frozen=True)
class Finding:
    """One thing a scanner reports: logical_id is the resource of the scanned (translated) template, or None."""

    tool: str
    rule: str
    logical_id: str | None
    message: str


@dataclass(frozen=True)
class Scan:
    findings: dict[str, list[Finding]]  # by the scanned file's name
    checkov_version: str
    guard_version: str
    guard_rule_files: int  # the fewest Control Tower rule files that cfn-guard evaluated on one template


def without_suppressions(translated: dict[str, Any]) -> dict[str, Any]:
    """Drops the scanners' own skip lists from the template's and the resources' Metadata."""
    for holder in (translated, *translated.get("Resources", {}).values()):
        metadata = holder.get("Metadata")
        if isinstance(metadata, dict):
            for key in SUPPRESSION_KEYS:
                metadata.pop(key, None)
            if not metadata:
                del holder["Metadata"]
    return translated


def run(templates: Iterable[Path], workdir: Path) -> Scan:
    """Scans the templates (names must differ) with the three scanners in parallel."""
    templates = list(templates)
    for tool in (CHECKOV, GUARD):
        if not tool.is_file():
            raise FileNotFoundError(f"{tool} is missing: {SETUP_HINT}")
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": "us-east-1",
        # checkov offline: no mapping download, no update check (and --skip-download below).
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "True",
    }
    files = [str(path) for path in templates]
    commands = {
        "cfn-lint": [str(CFN_LINT), *CFN_LINT_OPTIONS, "--", *files],
        "checkov": [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--output", "json",
                    *(arg for path in files for arg in ("--file", path))],
        "cfn-guard": [str(GUARD), "validate", "--rules", str(CONTROL_TOWER_RULES), "--output-format", "junit",
                      "--structured", "--show-summary", "none", *(arg for path in files for arg in ("--data", path))],
    }  # fmt: skip
    processes = {}
    for tool, command in commands.items():
        with (workdir / f"{tool}.out").open("w") as out, (workdir / f"{tool}.err").open("w") as err:
            processes[tool] = subprocess.Popen(command, cwd=home, env=env, stdout=out, stderr=err)
    outputs = {}
    expected = {"cfn-lint": CFN_LINT_EXIT_CODES, "checkov": CHECKOV_EXIT_CODES, "cfn-guard": GUARD_EXIT_CODES}
    try:
        for tool, process in processes.items():
            returncode = process.wait(timeout=300)
            outputs[tool] = (workdir / f"{tool}.out").read_text()
            if returncode not in expected[tool]:
                stderr = (workdir / f"{tool}.err").read_text()
                raise RuntimeError(f"{tool} exited with {returncode}:\n{stderr[-3000:]}\n{outputs[tool][-2000:]}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    findings: dict[str, list[Finding]] = {path.name: [] for path in templates}
    for name, finding in _cfn_lint_findings(outputs["cfn-lint"]):
        findings[name].append(finding)
    checkov_version = ""
    for name, finding, version in _checkov_findings(outputs["checkov"]):
        checkov_version = version
        if finding:
            findings[name].append(finding)
    rule_files = []
    for name, finding, count in _guard_findings(outputs["cfn-guard"]):
        rule_files.append(count)
        if finding:
            findings[name].append(finding)
    guard_version = subprocess.run([str(GUARD), "--version"], capture_output=True, text=True, check=True).stdout
    return Scan(findings, checkov_version, guard_version.strip(), min(rule_files, default=0))


def _short(message: str, limit: int = 160) -> str:
    """One line; without a long explanation in parentheses at the end (cfn-lint's I3011 has one)."""
    message = re.sub(r"\s+\([^()]{40,}\)$", "", " ".join(message.split()))
    return message if len(message) <= limit else message[: limit - 1] + "…"


_CONTEXT_AGGREGATE = re.compile(r"resources are missing (\S+): (.*?)\. For each listed resource")


def _cfn_lint_findings(output: str) -> Iterable[tuple[str, Finding]]:
    for match in json.loads(output):
        name = Path(match["Filename"]).name
        rule = match["Rule"]["Id"]
        path = match["Location"]["Path"]
        aggregate = _CONTEXT_AGGREGATE.search(match["Message"])
        if rule == "I4010" and aggregate:
            # One match lists every resource without a Context block; each is its own finding here.
            for logical_id, kind in re.findall(r"(\w+) \(([\w:]+)\)", aggregate.group(2)):
                yield name, Finding("cfn-lint", rule, logical_id, f"{kind} has no {aggregate.group(1)}")
            continue
        logical_id = path[1] if len(path) > 1 and path[0] == "Resources" else None
        message = match["Message"].split(". ")[0] if rule == "I4010" else match["Message"]
        yield name, Finding("cfn-lint", rule, logical_id, _short(message))


def _checkov_findings(output: str) -> Iterable[tuple[str, Finding | None, str]]:
    reports = json.loads(output)
    for report in reports if isinstance(reports, list) else [reports]:
        version = report["summary"]["checkov_version"]
        results = report.get("results", {})
        if results.get("parsing_errors") or results.get("skipped_checks"):
            raise RuntimeError(f"checkov could not parse or skipped checks: {json.dumps(results)[:3000]}")
        yield "", None, version
        for check in results.get("failed_checks", []):
            logical_id = check["resource"].rsplit(".", 1)[-1]
            finding = Finding("checkov", check["check_id"], logical_id, _short(check["check_name"]))
            yield Path(check["file_path"]).name, finding, version


def control_id(rule_file: str) -> str:
    """ct-lambda-pr-3.guard -> CT.LAMBDA.PR.3, ct-network-firewall-pr-1.guard -> CT.NETWORK-FIREWALL.PR.1."""
    match = re.fullmatch(r"ct-(.+)-pr-(\d+)(?:\.guard)?", Path(rule_file).name)
    if not match:
        raise ValueError(f"{rule_file} is not named like a Control Tower proactive control")
    return f"CT.{match.group(1).upper()}.PR.{match.group(2)}"


@cache
def _control_titles() -> dict[str, str]:
    titles = {}
    for path in CONTROL_TOWER_RULES.rglob("*.guard"):
        control = control_id(path.name)
        title = re.search(rf"\[{re.escape(control)}\]:\s*(.+)", path.read_text())
        titles[path.name] = title.group(1).strip() if title else control
    return titles


def _guard_findings(output: str) -> Iterable[tuple[str, Finding | None, int]]:
    report = ElementTree.fromstring(output)  # noqa: S314 (cfn-guard's own report on our template)
    for suite in report.iter("testsuite"):
        if suite.get("errors", "0") != "0":
            raise RuntimeError(f"cfn-guard could not evaluate {suite.get('name')}: {output[-3000:]}")
        cases = suite.findall("testcase")
        name = Path(suite.get("name", "")).name
        yield name, None, len(cases)
        for case in cases:
            rule_file = case.get("name", "")
            for failure in case.findall("failure"):
                text = failure.text or ""
                # Each failed clause names what it looked at: /Resources/<logical id>/...
                logical_ids = sorted(set(re.findall(r"/Resources/([A-Za-z0-9]+)", text))) or [None]
                title = _control_titles().get(rule_file, failure.get("message", ""))
                for logical_id in logical_ids:
                    yield name, Finding("cfn-guard", control_id(rule_file), logical_id, _short(title)), len(cases)
