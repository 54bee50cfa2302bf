"""Static verification of template.yaml and statemachine/mlops.asl.json: every check here fails on a broken file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asl import ASL_PATH, ROOT, SUBSTITUTION, load_definition, predecessors, reachable, transitions
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "template.yaml"
OFFLINE_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return load_definition()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())


def _state_machine(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine")
    return resource["Properties"]


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in definition["States"].items() if s["Type"] == "Task"}


class _ManagedPolicies:
    """The translator asks IAM for managed policy ARNs; these are the ones SAM adds for this template."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
        }


def _transformed_with_inline_asl(template: dict[str, Any], asl: dict[str, Any], tmp_path: Path) -> Path:
    """The CloudFormation the SAM transform produces, with the ASL inlined so cfn-lint's E3601 checks it."""
    template = json.loads(json.dumps(template))
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://packaged-code/{name}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine":
            resource["Properties"]["DefinitionUri"] = "s3://packaged-code/mlops.asl.json"
    transformed = transform(template, {}, _ManagedPolicies())
    (machine,) = (r for r in transformed["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    machine["Properties"].pop("DefinitionS3Location", None)
    machine["Properties"].pop("DefinitionString", None)
    machine["Properties"]["Definition"] = asl
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed, default=str))
    return path


def _cfn_lint(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "cfn-lint", *extra, "--", str(path)], capture_output=True, text=True, env=OFFLINE_ENV, check=False
    )


def test_sam_validate_lint_accepts_the_template() -> None:
    result = subprocess.run(
        [BIN / "sam", "validate", "--lint"], cwd=ROOT, capture_output=True, text=True, env=OFFLINE_ENV, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_accepts_the_template() -> None:
    result = _cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


# cfn-lint's ASL schema (1.58.0) types a Task's TimeoutSeconds as a number; a JSONata state may give a JSONata
# expression there instead (the review's timeout comes from the run). That finding is cfn-lint's gap, not ours.
JSONATA_WHERE_A_NUMBER_IS_TYPED = re.compile(r"^'\{%.*%\}' is not of type 'number'$")


def test_transformed_template_passes_the_asl_schema_rule(template, definition, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # W3005 flags DependsOn lines that the SAM transform itself writes.
    path = _transformed_with_inline_asl(template, definition, tmp_path)
    result = _cfn_lint(path, "--ignore-checks", "W3005", "--format", "json")
    findings = json.loads(result.stdout or "[]")
    gaps = [f for f in findings if f["Rule"]["Id"] == "E3601" and JSONATA_WHERE_A_NUMBER_IS_TYPED.match(f["Message"])]
    assert [f["Location"]["Path"][-1] for f in gaps] == ["TimeoutSeconds"]
    assert [f for f in findings if f not in gaps] == [], result.stderr


def test_asl_schema_rule_rejects_a_broken_definition(template, definition, tmp_path, monkeypatch) -> None:
    """Proves the check above can fail: a misspelt state type must be reported as E3601."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    broken = json.loads(json.dumps(definition))
    broken["States"]["Run failed"]["Type"] = "Fial"
    result = _cfn_lint(_transformed_with_inline_asl(template, broken, tmp_path), "--ignore-checks", "W3005")
    assert "E3601" in result.stdout


def _asl_language_service(path: Path) -> list[dict[str, Any]]:
    """The diagnostics of the ASL language service (the AWS Toolkit's, in VS Code) for one definition file."""
    if not (ROOT / "node_modules" / "amazon-states-language-service").is_dir():
        pytest.fail("amazon-states-language-service is not installed: `make test` runs `npm ci` first", pytrace=False)
    service = [shutil.which("node") or "node", str(ROOT / "tests" / "asl_language_service.cjs"), str(path)]
    reply = subprocess.run(service, capture_output=True, text=True, check=False, timeout=120)
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)


def test_the_editors_asl_language_service_reports_nothing_on_the_definition() -> None:
    assert _asl_language_service(ASL_PATH) == []


def test_the_editors_asl_language_service_reports_a_next_to_a_missing_state(definition, tmp_path) -> None:
    """Proves the zero above is the service's opinion, not a service that never says anything."""
    broken = json.loads(json.dumps(definition))
    broken["States"]["Prepare data"]["Next"] = "No such state"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken, indent=2))
    messages = [d["message"] for d in _asl_language_service(path)]
    assert 'The value of "Next" property must be the name of an existing state.' in messages


def test_every_substitution_is_defined_and_every_definition_is_used(template) -> None:
    used = set(SUBSTITUTION.findall(ASL_PATH.read_text()))
    defined = set(_state_machine(template)["DefinitionSubstitutions"])
    assert used - defined == set(), "used in the ASL but missing from DefinitionSubstitutions"
    assert defined - used == set(), "defined in DefinitionSubstitutions but never used"


def test_every_transition_target_exists(definition) -> None:
    states = definition["States"]
    assert definition["StartAt"] in states
    broken = [
        (name, kind, target) for name, s in states.items() for kind, target in transitions(s) if target not in states
    ]
    assert broken == []


def test_every_state_is_reachable(definition) -> None:
    assert set(definition["States"]) - reachable(definition) == set()


def test_every_task_has_a_catch(definition) -> None:
    assert [name for name, task in _tasks(definition).items() if not task.get("Catch")] == []


def test_every_failure_ends_in_a_notification_then_a_fail_state(definition) -> None:
    fails = [name for name, s in definition["States"].items() if s["Type"] == "Fail"]
    assert fails
    for name in fails:
        state = definition["States"][name]
        assert ("Error" in state or "ErrorPath" in state) and ("Cause" in state or "CausePath" in state)
        for before in predecessors(definition, name):
            assert definition["States"][before].get("Resource") == "arn:aws:states:::sns:publish", before


def test_every_callback_task_has_a_timeout(definition) -> None:
    callbacks = {n: t for n, t in _tasks(definition).items() if t["Resource"].endswith(".waitForTaskToken")}
    assert callbacks
    assert [n for n, t in callbacks.items() if not ({"TimeoutSeconds", "TimeoutSecondsPath"} & set(t))] == []


def test_job_and_resource_names_are_never_constants(definition) -> None:
    name_fields = ("TrainingJobName", "TransformJobName", "ProcessingJobName", "ModelName", "EndpointConfigName")
    for name, task in _tasks(definition).items():
        arguments = task.get("Arguments", {})
        for field in name_fields:
            if field in arguments:
                assert arguments[field].startswith("{%"), f"{name}: {field} is a constant; name it from the run"
        for field in ("TrainingJobName", "TransformJobName", "ProcessingJobName"):
            if field in arguments:
                assert "$uuid()" in arguments[field], f"{name}: a Retry needs a fresh name per attempt"


def test_retry_policies_are_well_formed(definition) -> None:
    for name, task in _tasks(definition).items():
        for retrier in task.get("Retry", []):
            assert retrier.get("JitterStrategy", "NONE") in {"FULL", "NONE"}, name
            assert retrier.get("BackoffRate", 2.0) >= 1.0, name
            assert "States.ALL" not in retrier["ErrorEquals"], f"{name}: retrying everything hides real failures"


def test_the_model_registry_survives_deleting_or_replacing_the_stack(template) -> None:
    registry = template["Resources"]["ModelRegistryTable"]
    assert (registry.get("DeletionPolicy"), registry.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_service_roles_can_be_assumed_only_for_this_account(template) -> None:
    trusts = [r["Properties"]["AssumeRolePolicyDocument"] for r in template["Resources"].values()
              if r["Type"] == "AWS::IAM::Role"]  # fmt: skip
    assert trusts
    for trust in trusts:
        for statement in trust["Statement"]:
            assert "aws:SourceAccount" in statement["Condition"]["StringEquals"], statement["Principal"]
            assert "aws:SourceArn" in statement["Condition"]["ArnLike"], statement["Principal"]


def test_every_state_has_a_spoken_name(definition) -> None:
    for name in definition["States"]:
        assert name[0].isupper() and " " in name and "_" not in name, f"{name!r} does not read like a runbook step"


def test_sam_build_succeeds_offline(tmp_path) -> None:
    if shutil.which("sam", path=str(BIN)) is None:
        pytest.fail("sam is not installed in the virtual environment")
    result = subprocess.run(
        [BIN / "sam", "build", "--template-file", str(TEMPLATE), "--build-dir", str(tmp_path / "build")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=OFFLINE_ENV,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for function in ("ValidateInputFunction", "AccuracyGateFunction", "ApprovalRequestFunction", "PredictFunction"):
        assert (tmp_path / "build" / function / "app.py").is_file()


def test_every_log_the_stack_writes_goes_to_a_declared_group_with_retention(template) -> None:
    resources = template["Resources"]
    groups = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert all(props.get("RetentionInDays") == {"Ref": "LogRetentionDays"} for props in groups.values())
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    assert functions and all(f["LoggingConfig"]["LogGroup"]["Ref"] in groups for f in functions)
    # Glue 5.0 writes to <prefix>/output and <prefix>/error.
    prefix = resources["EtlJob"]["Properties"]["DefaultArguments"]["--custom-logGroup-prefix"]["Fn::Sub"]
    named = {props["LogGroupName"]["Fn::Sub"] for props in groups.values() if "LogGroupName" in props}
    assert {f"{prefix}/output", f"{prefix}/error"} <= named
    (destination,) = _state_machine(template)["Logging"]["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0] in groups
