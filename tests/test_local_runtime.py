"""The embedded local runtime: the demo path end to end, the AWS CLI, and the providers' error contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pipeline
import pytest
import requests
from asl import ROOT

from local_runtime import actions
from local_runtime.stack import LocalStack

DEPLOYED_PATH = [
    "Check run input", "Claim data version", "Take pipeline lock", "Prepare data", "Train candidate model",
    "Evaluate candidate", "Is the candidate good enough?", "Create candidate model", "Score test set",
    "Wait for approval", "Create endpoint config", "Look up live endpoint", "Create endpoint",
    "Start status checks", "Wait for endpoint", "Check endpoint status", "Count status check",
    "Is the endpoint live?", "Register production model", "Was another model in production?",
    "Point registry at new model", "Model deployed", "Release pipeline lock", "Notify outcome",
    "Report outcome", "Run finished",
]  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    with LocalStack(ROOT, overrides={"StatusPollSeconds": "1"}) as local:
        actions.publish_model_code(local.client("s3"), local.outputs["ArtifactsBucketName"], ROOT / "model")
        yield local


def test_new_data_runs_the_whole_pipeline_to_a_working_prediction(stack) -> None:
    known = pipeline.executions(stack)
    pipeline.upload(stack, "raw/iris.csv", pipeline.iris())
    arn = pipeline.next_execution(stack, known)  # started by the EventBridge rule, not by the test

    email = pipeline.review_email(stack)
    link = actions.review_link(email["Message"])
    assert link.startswith(stack.api_url + "/approvals/")
    assert "taskToken" not in email["Message"]
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Approve and deploy" in page.text
    decision = actions.decide(link, "approve", reviewer="e2e test")
    assert decision.status_code == 200

    view = pipeline.finish(stack, arn)
    assert view.status == "SUCCEEDED"
    assert pipeline.path(view) == DEPLOYED_PATH
    result = pipeline.output(stack, arn)
    assert result["outcome"] == "deployed"
    assert result["candidate"]["value"] >= 0.9

    registry = pipeline.registry(stack)
    current = registry[("PRODUCTION", "CURRENT")]
    assert current["modelName"] == result["modelName"]
    model = registry[("MODEL", result["modelName"])]
    assert model["status"] == "production" and model["approvedBy"] == "e2e test"
    assert model["modelArtifacts"].endswith("/output/model.tar.gz")
    assert pipeline.outcomes_mailed(stack) == ["review-requested", "deployed"]
    assert pipeline.endpoint(stack)["EndpointStatus"] == "InService"

    reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "5.9,3.0,5.1,1.8\n5.1,3.5,1.4,0.2")
    assert reply.status_code == 200
    assert reply.json() == {"predictions": ["virginica", "setosa"]}
    assert requests.post(stack.outputs["PredictUrl"], json={"data": "1,2"}, timeout=10).status_code == 403
    bad = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "1,2")
    assert bad.status_code == 400 and "expected 4 features per row, got 2" in bad.json()["message"]


def test_the_aws_cli_lists_and_describes_executions_on_the_local_endpoint(stack) -> None:
    arn = pipeline.start(stack, {"bogus": True})
    pipeline.finish(stack, arn)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", stack.endpoint_url, "--output", "json"]
    listing = subprocess.run(
        [*aws, "stepfunctions", "list-executions", "--state-machine-arn", stack.state_machine_arn],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert arn in {e["executionArn"] for e in json.loads(listing.stdout)["executions"]}
    described = subprocess.run(
        [*aws, "stepfunctions", "describe-execution", "--execution-arn", arn],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(described.stdout)["status"] == "FAILED"


def test_a_lambda_error_type_reaches_the_asl_as_the_error_name(stack) -> None:
    arn = pipeline.start(stack, {"accuracyThreshold": "high"})
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == ["Check run input", "Notify failure", "Run failed"]
    assert view.error == "InvalidInput"
    assert "accuracyThreshold: must be a number" in view.cause


def test_a_training_script_that_exits_non_zero_fails_the_run_with_the_sagemaker_reason(stack) -> None:
    raw = pipeline.upload(stack, "manual/iris.csv", pipeline.iris())
    arn = pipeline.start(stack, {"rawDataUri": raw, "hyperparameters": {"n_estimators": 0}})
    view = pipeline.finish(stack, arn)
    assert view.status == "FAILED"
    assert view.error == "SageMaker.TrainingJobFailed"
    assert "AlgorithmError" in view.cause and "n_estimators must be at least 1" in view.cause
    assert pipeline.path(view)[-5:] == [
        "Train candidate model", "Give back data claim after failure", "Release lock after failure",
        "Notify failure", "Run failed",
    ]  # fmt: skip
    assert "failed" in pipeline.outcomes_mailed(stack)
