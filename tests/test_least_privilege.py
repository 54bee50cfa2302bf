"""Every statement the pipeline's roles carry is needed: a copy of the template without one fails the
state that uses it, with AWS's access error, as the same deploy would on AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pipeline
import pytest
from asl import ROOT
from samtranslator.yaml_helper import yaml_parse

from local_runtime.stack import LocalDeployment

FAILURE_TAIL = ["Give back data claim after failure", "Release lock after failure", "Notify failure", "Run failed"]


def _without(edit: Callable[[dict[str, Any]], None], tmp_path: Path) -> Path:
    """A project folder whose template.yaml is this one's with ``edit`` applied; the code is shared."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    edit(template["Resources"])
    for folder in ("functions", "model", "etl", "statemachine"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    (tmp_path / "template.yaml").write_text(json.dumps(template, indent=1))
    return tmp_path


def _drop_statement(resource: str, sid: str) -> Callable[[dict[str, Any]], None]:
    def edit(resources: dict[str, Any]) -> None:
        properties = resources[resource]["Properties"]
        for policy in properties["Policies"]:
            document = policy.get("PolicyDocument", policy)
            if isinstance(document, dict) and "Statement" in document:
                document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]

    return edit


def _drop_policy(resource: str, index: int) -> Callable[[dict[str, Any]], None]:
    def edit(resources: dict[str, Any]) -> None:
        del resources[resource]["Properties"]["Policies"][index]

    return edit


def _drop_sagemaker_s3(resources: dict[str, Any]) -> None:
    statements = resources["SageMakerExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    del statements[0]  # s3:GetObject/PutObject/ListBucket on the artifacts bucket


CASES = [
    # (what is removed, edit, failing state, error, the permission named in the cause, states before it)
    ("state machine: invoke the input check", _drop_policy("MlopsStateMachine", 0), "Check run input",
     "Lambda.AccessDeniedException", "lambda:InvokeFunction", None),
    ("Glue role: read the packaged script", _drop_statement("GlueJobRole", "ReadPackagedScript"), "Prepare data",
     "Glue.JobRunFailed", "s3:GetObject", 4),
    ("state machine: pass the SageMaker role", _drop_statement("MlopsStateMachine", "PassOnlyTheSageMakerRole"),
     "Train candidate model", "SageMaker.AmazonSageMakerException", "iam:PassRole", 5),
    ("SageMaker role: artifacts bucket", _drop_sagemaker_s3, "Train candidate model",
     "SageMaker.TrainingJobFailed", "s3:ListBucket", 5),
    ("accuracy gate role: read the registry", _drop_policy("AccuracyGateFunction", 0), "Evaluate candidate",
     "ClientError", "dynamodb:GetItem", 6),
]  # fmt: skip


@pytest.mark.parametrize(
    ("removed", "edit", "state", "error", "permission", "reached"), CASES, ids=[c[0] for c in CASES]
)
def test_a_template_missing_a_needed_statement_fails_the_state_that_needs_it(
    tmp_path, removed, edit, state, error, permission, reached
) -> None:
    with LocalDeployment(_without(edit, tmp_path), overrides={"StatusPollSeconds": "1"}) as stack:
        data = pipeline.upload(stack, "manual/iris.csv", pipeline.iris())
        arn = pipeline.start(stack, {"rawDataUri": data, "dataVersion": f"least-privilege/{state}"})
        view = pipeline.finish(stack, arn, timeout=180)
        denied = [r for r in stack.access.report() if not r["allowed"]]
    assert view.status == "FAILED"
    failed = view.by_name()[state]
    assert failed.error == error, failed
    assert view.error == error and f"is not authorized to perform: {permission}" in view.cause
    assert [r["action"] for r in denied] == [permission]
    names = pipeline.path(view)
    if reached is not None:
        assert names[reached - 1] == state and names[reached:] == FAILURE_TAIL
