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

from local_runtime.access import sagemaker_checks
from local_runtime.iam import Caller, Request, evaluate
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment
from local_runtime.template import ACCOUNT

FAILURE_TAIL = pipeline.FAILURE_TAIL


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


def _trust_only(resource: str, source_arn: str) -> Callable[[dict[str, Any]], None]:
    """The role trusts its service only for another resource than the one that uses it."""

    def edit(resources: dict[str, Any]) -> None:
        for statement in resources[resource]["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            statement["Condition"]["ArnLike"]["aws:SourceArn"] = source_arn

    return edit


CASES = [
    # (what is removed, edit, failing state, error, the permission named in the cause, states before it)
    ("state machine: invoke the input check", _drop_policy("MlopsStateMachine", 0), "Check run input",
     "Lambda.AccessDeniedException", "lambda:InvokeFunction", None),
    ("Glue role: trusted for another job", _trust_only("GlueJobRole", "arn:aws:glue:*:*:job/another-job"),
     "Prepare data", "Glue.JobRunFailed", "sts:AssumeRole", 4),
    ("Glue role: read the packaged script", _drop_statement("GlueJobRole", "ReadPackagedScript"), "Prepare data",
     "Glue.JobRunFailed", "s3:GetObject", 4),
    ("state machine: pass the SageMaker roles", _drop_statement("MlopsStateMachine", "PassOnlyTheSageMakerRoles"),
     "Train candidate model", "SageMaker.AmazonSageMakerException", "iam:PassRole", 5),
    ("training role: its S3 access", _drop_policy("TrainingRole", 0), "Train candidate model",
     "SageMaker.TrainingJobFailed", "s3:ListBucket", 5),
    ("scoring role: write the predictions", _drop_statement("ScoringRole", "WritePredictions"), "Score test set",
     "SageMaker.TransformJobFailed", "s3:PutObject", 12),
    ("evaluation role: write the evaluation", _drop_statement("EvaluationRole", "WriteEvaluation"),
     "Score the candidate on the test set", "SageMaker.ProcessingJobFailed", "s3:PutObject", 8),
    ("accuracy gate role: read the evaluation", _drop_policy("AccuracyGateFunction", 0), "Apply the accuracy gate",
     "AccessDenied", "s3:GetObject", 9),
]  # fmt: skip


@pytest.mark.parametrize(
    ("removed", "edit", "state", "error", "permission", "reached"), CASES, ids=[c[0] for c in CASES]
)
def test_a_template_missing_a_needed_statement_fails_the_state_that_needs_it(
    tmp_path, removed, edit, state, error, permission, reached
) -> None:
    with LocalDeployment(_without(edit, tmp_path), overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as stack:
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


def _s3_allowed(stack: LocalDeployment, role: str, action: str, key: str) -> bool:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{stack.template.physical_ids[role]}"
    bucket = stack.outputs["ArtifactsBucketName"]
    caller = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/SageMaker", role_arn=role_arn)
    request = Request(caller, action, f"arn:aws:s3:::{bucket}/{key}", {"aws:SecureTransport": "true"})
    return evaluate(request, stack.access.policies[role_arn], stack.access.bucket_policies.get(bucket)).allowed


def test_each_sagemaker_container_writes_only_its_own_output() -> None:
    keys = ["code/model-source-abc.tar.gz", "runs/r1/data/train/part-0.csv", "runs/r1/model/model.tar.gz",
            "runs/r1/test-predictions/test.csv.out", "evaluation.json"]  # fmt: skip
    writable = {
        "TrainingRole": {"runs/r1/model/model.tar.gz"},
        "ScoringRole": {"runs/r1/test-predictions/test.csv.out"},
        "ServingRole": set(),
    }
    with LocalDeployment(ROOT, overrides=PROJECT_PARAMETERS) as stack:
        for role, expected in writable.items():
            assert {k for k in keys if _s3_allowed(stack, role, "s3:PutObject", k)} == expected, role
            # Every container loads the model code; only training reads the training split.
            assert _s3_allowed(stack, role, "s3:GetObject", "code/model-source-abc.tar.gz"), role
            reads_training_data = _s3_allowed(stack, role, "s3:GetObject", "runs/r1/data/train/part-0.csv")
            assert reads_training_data == (role == "TrainingRole"), role


KEY = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def test_a_customer_managed_key_encrypts_the_stack_and_every_job_must_use_it(tmp_path) -> None:
    overrides = {"KmsKeyArn": KEY, "LogRetentionDays": "14", "NamePrefix": "encrypted"}
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, **overrides}) as stack:
        s3, logs = stack.client("s3"), stack.client("logs")
        for bucket in (stack.outputs["DataBucketName"], stack.outputs["ArtifactsBucketName"]):
            (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
        topic = stack.client("sns").get_topic_attributes(TopicArn=stack.outputs["NotificationTopicArn"])
        assert topic["Attributes"]["KmsMasterKeyId"] == KEY
        table = stack.client("dynamodb").describe_table(TableName=stack.outputs["ModelRegistryTableName"])["Table"]
        assert table["SSEDescription"]["SSEType"] == "KMS" and table["SSEDescription"]["KMSMasterKeyArn"] == KEY
        declared = {stack.template.physical_ids[k] for k in stack.template.of_type("AWS::Logs::LogGroup")}
        groups = [g for g in logs.describe_log_groups()["logGroups"] if g["logGroupName"] in declared]
        assert len(groups) >= 9 and all(g.get("kmsKeyId") == KEY and g.get("retentionInDays") == 14 for g in groups)

        data = pipeline.upload(stack, "manual/iris.csv", pipeline.iris())
        arn = pipeline.start(stack, {"rawDataUri": data, "dataVersion": "kms/1"})
        pipeline.review_email(stack)  # training, scoring and the review request all ran on the key
        stack.client("stepfunctions").stop_execution(executionArn=arn)
        report = stack.access.report()
    assert [r for r in report if not r["allowed"]] == []
    key_users = {r["principal"].split(":role/")[-1].split("-")[-2] for r in report if r["action"].startswith("kms:")}
    assert {"TrainingRole", "ScoringRole", "GlueJobRole", "ApprovalRequestFunctionRole"} <= key_users

    # The state machine's role refuses SageMaker jobs that leave the key out, whoever builds the request.
    machine_role = f"arn:aws:iam::{ACCOUNT}:role/{stack.template.physical_ids['MlopsStateMachineRole']}"
    caller = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/machine/StepFunctions", role_arn=machine_role)
    job = {"TrainingJobName": "encrypted-without-key", "ResourceConfig": {}, "OutputDataConfig": {"KmsKeyId": KEY}}
    (create, *_) = sagemaker_checks("CreateTrainingJob", job)
    request = Request(caller, create.action, create.resource, dict(create.context))
    assert not evaluate(request, stack.access.policies[machine_role]).allowed
    job["ResourceConfig"]["VolumeKmsKeyId"] = KEY
    (create, *_) = sagemaker_checks("CreateTrainingJob", job)
    request = Request(caller, create.action, create.resource, dict(create.context))
    assert evaluate(request, stack.access.policies[machine_role]).allowed
