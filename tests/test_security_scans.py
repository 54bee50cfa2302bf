"""Static security scans of the SAM-translated template (ASL inlined): every finding is fixed or justified.

cfn-lint with every rule, checkov, and cfn-guard with AWS Control Tower's proactive controls scan the template
once per run of this module (tests/security_scanners.py). A finding is (tool, rule id, resource); one on a
resource that the SAM transform generates belongs to the template resource whose logical id is the longest
prefix of it (MlopsApiv1Stage -> MlopsApi, PredictFunctionRole -> PredictFunction). Justify one in template.yaml:

    Resources:
      PredictFunction:
        Metadata:
          SecurityFindings:
            CKV_AWS_117: "Not in a VPC: it calls only SageMaker's public API ..."

and a template-level finding (no resource) under the top-level Metadata.SecurityFindings; a rule justified there
is accepted on every resource (for rules about the template as a whole, such as documentation conventions).
Justifications are read from template.yaml itself, since the transform drops Metadata on what it generates.
The scanners' own skip lists (Metadata cfn-lint/checkov/guard) are removed before scanning: this file does
the accounting.
"""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import security_scanners
from asl import ROOT, load_definition
from samtranslator.yaml_helper import yaml_parse
from test_static_definition import _transformed_with_inline_asl

TEMPLATE = ROOT / "template.yaml"
# Every template the project ships, by the name its scan is filed under. The application's is SAM-translated
# first; the delivery templates are plain CloudFormation.
SCANNED = {
    "template": TEMPLATE,
    "bootstrap": ROOT / "delivery" / "bootstrap.yaml",
    "codepipeline": ROOT / "delivery" / "codepipeline.yaml",
}
TEMPLATE_LEVEL = "(template)"
MIN_REASON = 20
# The weakened copy (see _weakened) keeps only what these resources become, so that scanning it is quick, and
# each scanner must report what it lost although the copy's Metadata asks the scanner to skip just that.
WEAKENED = ("DataBucket", "ModelRegistryTable")
EXPECTED_IN_WEAKENED_COPY = {
    ("cfn-lint", "I3011", "ModelRegistryTable"),  # no DeletionPolicy/UpdateReplacePolicy on a stateful resource
    ("checkov", "CKV_AWS_53", "DataBucket"),  # public ACLs not blocked
    ("cfn-guard", "CT.S3.PR.1", "DataBucket"),  # no bucket-level block public access
}

Key = tuple[str, str, str]  # (tool, rule, template resource or TEMPLATE_LEVEL)


def _weakened(template: dict[str, Any]) -> dict[str, Any]:
    """A copy whose data bucket is neither private nor encrypted and whose registry goes with the stack, and
    whose Metadata asks each scanner, in its own syntax, to skip the findings that this makes it report."""
    weak = copy.deepcopy(template)
    bucket = weak["Resources"]["DataBucket"]["Properties"]
    for protection in ("PublicAccessBlockConfiguration", "BucketEncryption"):
        assert bucket.pop(protection, None) is not None, f"DataBucket has no {protection} to remove"
    registry = weak["Resources"]["ModelRegistryTable"]
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        assert registry.pop(policy, None) is not None, f"ModelRegistryTable has no {policy} to remove"
    lint_rules = sorted({rule for tool, rule, _ in EXPECTED_IN_WEAKENED_COPY if tool == "cfn-lint"} | {"I4010"})
    weak.setdefault("Metadata", {})["cfn-lint"] = {"config": {"ignore_checks": lint_rules}}
    for logical_id in WEAKENED:
        weak["Resources"][logical_id]["Metadata"] = {
            "cfn-lint": {"config": {"ignore_checks": lint_rules}},
            "checkov": {"skip": [{"id": rule, "comment": "skip it"} for tool, rule, _ in EXPECTED_IN_WEAKENED_COPY
                                 if tool == "checkov"]},
            "guard": {"SuppressedRules": ["s3_bucket_level_public_access_prohibited_check", "CT.S3.PR.1"]},
        }  # fmt: skip
    return weak


def _owner(logical_id: str | None, template_ids: Iterable[str]) -> str:
    """The template resource a translated resource comes from: the longest logical id that prefixes it."""
    if logical_id is None:
        return TEMPLATE_LEVEL
    owners = [candidate for candidate in template_ids if logical_id.startswith(candidate)]
    return max(owners, key=len) if owners else TEMPLATE_LEVEL


def _attributed(findings: list[security_scanners.Finding], template: dict[str, Any]) -> dict[Key, list[str]]:
    """Findings by (tool, rule, template resource), each with its messages, the generated resource named."""
    attributed: dict[Key, list[str]] = defaultdict(list)
    for finding in findings:
        owner = _owner(finding.logical_id, template["Resources"])
        generated = f"[{finding.logical_id}] " if finding.logical_id not in (None, owner) else ""
        message = generated + finding.message
        if message not in attributed[finding.tool, finding.rule, owner]:
            attributed[finding.tool, finding.rule, owner].append(message)
    return dict(attributed)


def _justifications(template: dict[str, Any]) -> dict[str, Any]:
    """SecurityFindings of the template (under TEMPLATE_LEVEL) and of each resource, as written."""
    found = {TEMPLATE_LEVEL: (template.get("Metadata") or {}).get("SecurityFindings")}
    for logical_id, resource in template["Resources"].items():
        found[logical_id] = (resource.get("Metadata") or {}).get("SecurityFindings")
    return {owner: entries for owner, entries in found.items() if entries is not None}


def _where(owner: str) -> str:
    return "Metadata.SecurityFindings" if owner == TEMPLATE_LEVEL else f"Resources.{owner}.Metadata.SecurityFindings"


def _translate(template: dict[str, Any], folder: Path, name: str, keep: Iterable[str] | None = None) -> Path:
    """The SAM-translated template without the scanners' skip lists; with keep, only what those resources made."""
    folder.mkdir()
    translated = json.loads(_transformed_with_inline_asl(template, load_definition(), folder).read_text())
    if keep is not None:
        owners = set(keep)
        resources = translated["Resources"]
        translated["Resources"] = {k: v for k, v in resources.items() if _owner(k, template["Resources"]) in owners}
        translated.pop("Outputs", None)
    path = folder / name
    path.write_text(json.dumps(security_scanners.without_suppressions(translated)))
    return path


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {name: yaml_parse(path.read_text()) for name, path in SCANNED.items()}


@pytest.fixture(scope="module")
def template(templates) -> dict[str, Any]:
    return templates["template"]


@pytest.fixture(scope="module")
def scanned(templates, tmp_path_factory) -> list[Path]:
    """The translated template, the translated weakened copy and the delivery templates, as the scanners get them."""
    folder = tmp_path_factory.mktemp("security-scans")
    template = templates["template"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the SAM translator needs a region
        paths = [
            _translate(template, folder / "t", "template.json"),
            _translate(_weakened(template), folder / "w", "weakened.json", keep=WEAKENED),
        ]
    for name in SCANNED.keys() - {"template"}:
        path = folder / "t" / f"{name}.json"
        path.write_text(json.dumps(security_scanners.without_suppressions(templates[name])))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def scan(scanned) -> security_scanners.Scan:
    """One run of the three scanners, in parallel, over both files."""
    try:
        return security_scanners.run(scanned, scanned[0].parent.parent)
    except FileNotFoundError as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="module")
def scans(scan, templates) -> dict[str, dict[Key, list[str]]]:
    """Findings by (tool, rule, template resource) with their messages, by scanned file (and "weakened")."""
    return {
        Path(name).stem: _attributed(findings, templates.get(Path(name).stem, templates["template"]))
        for name, findings in scan.findings.items()
    }


@pytest.mark.parametrize("name", SCANNED)
def test_every_scanner_finding_is_fixed_or_justified_in_the_template(name, templates, scans) -> None:
    justified = _justifications(templates[name])
    unjustified = sorted(
        (owner, tool, rule, messages)
        for (tool, rule, owner), messages in scans.get(name, {}).items()
        if not any(rule in (justified.get(where) or {}) for where in (owner, TEMPLATE_LEVEL))
    )
    if unjustified:
        lines = [f"{tool} {rule} {owner}: {' | '.join(messages)}" for owner, tool, rule, messages in unjustified]
        pytest.fail(
            f"{len(unjustified)} scanner findings are neither fixed nor justified. Fix each one, or justify it in "
            f"{SCANNED[name].relative_to(ROOT)} in its resource's Metadata (a {TEMPLATE_LEVEL} one in the "
            "top-level Metadata):\n"
            f'  SecurityFindings:\n    <rule>: "why it is accepted ({MIN_REASON}+ characters)"\n'
            "Findings (tool rule resource: message; [generated resource]):\n" + "\n".join(lines),
            pytrace=False,
        )


@pytest.mark.parametrize("name", SCANNED)
def test_no_justification_outlives_its_finding(name, templates, scans) -> None:
    reported = {(owner, rule) for _, rule, owner in scans.get(name, {})}
    anywhere = {rule for _, rule in reported}
    stale = [
        f"{_where(owner)}.{rule}"
        for owner, entries in _justifications(templates[name]).items()
        if isinstance(entries, dict)
        for rule in entries
        if (owner, rule) not in reported and not (owner == TEMPLATE_LEVEL and rule in anywhere)
    ]
    assert not stale, "no scanner reports these any more; delete the justifications:\n" + "\n".join(stale)


@pytest.mark.parametrize("name", SCANNED)
def test_every_justification_gives_a_reason(name, templates) -> None:
    problems = []
    for owner, entries in _justifications(templates[name]).items():
        if not isinstance(entries, dict):
            problems.append(f"{_where(owner)} must map rule ids to reasons")
            continue
        for rule, reason in entries.items():
            if not re.fullmatch(r"[A-Z][A-Z0-9_.-]*[0-9]", str(rule)):
                problems.append(f"{_where(owner)}.{rule}: not a scanner rule id (I3011, CKV_AWS_115, CT.S3.PR.2)")
            if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
                problems.append(f"{_where(owner)}.{rule}: the reason must be a sentence of {MIN_REASON}+ characters")
    assert not problems, "\n".join(problems)


def test_each_scanner_reports_protections_removed_from_a_copy_of_the_template(scans) -> None:
    """Each scanner runs and can fail, and the skip list that the copy's Metadata gives it changes nothing."""
    for tool in ("cfn-lint", "checkov", "cfn-guard"):
        assert any(key[0] == tool for key in scans["template"]), f"{tool} reported nothing on the template"
    new = set(scans["weakened"]) - set(scans["template"])
    assert new >= EXPECTED_IN_WEAKENED_COPY, f"not reported: {EXPECTED_IN_WEAKENED_COPY - new}"


def test_skip_lists_in_the_template_metadata_never_reach_the_scanners(scanned) -> None:
    for path in scanned:
        translated = json.loads(path.read_text())
        for where, holder in [("Metadata", translated), *translated["Resources"].items()]:
            skips = set(holder.get("Metadata", {})) & set(security_scanners.SUPPRESSION_KEYS)
            assert not skips, f"{path.name}: {where} still asks a scanner to skip findings ({skips})"


def test_the_scanners_are_the_pinned_versions(scan) -> None:
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-scan.txt").read_text()))
    assert scan.checkov_version == pins["checkov"], "run `make test` to rebuild .venv-scan from requirements-scan.txt"
    assert scan.guard_version == "cfn-guard 3.1.1"
    assert scan.guard_rule_files >= 200, "cfn-guard did not evaluate the Control Tower rules"
