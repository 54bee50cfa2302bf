"""The local runtime's own contracts: the AWS CLI works against it, and it speaks AWS's error shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pipeline
import pytest
from asl import ROOT

from local_runtime import actions
from local_runtime.stack import LocalDeployment
from local_runtime.template import UnsupportedTemplate, load_template


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT) as local:
        yield local


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


def test_unnamed_executions_get_a_uuid_name_as_in_aws(stack) -> None:
    first, second = pipeline.start(stack, {"bogus": 1}), pipeline.start(stack, {"bogus": 2})
    assert first != second
    assert len(first.rsplit(":", 1)[1]) == 36


def test_lambda_invoke_from_code_runs_the_handler_with_lambdas_error_contract(stack) -> None:
    function = stack.template.physical_ids["ValidateInputFunction"]
    reply = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps({"input": [], "execution": {}}))
    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Payload"].read())["errorType"] == "KeyError"


def test_invoking_a_missing_endpoint_is_a_validation_error(stack) -> None:
    runtime = stack.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ValidationError):
        runtime.invoke_endpoint(EndpointName="nope", Body=b"1,2", ContentType="text/csv")


def test_predicting_before_any_model_is_deployed_is_a_503(stack) -> None:
    reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "5.9,3.0,5.1,1.8")
    assert reply.status_code == 503
    assert "not deployed yet" in reply.json()["message"]


def test_a_template_parameter_outside_its_allowed_values_is_refused() -> None:
    with pytest.raises(UnsupportedTemplate, match="EndpointType='Huge' is not one of"):
        load_template(ROOT / "template.yaml", "x", {"NotificationEmail": "a@b.co", "EndpointType": "Huge"})


def test_resources_whose_condition_is_false_are_not_deployed(stack) -> None:
    groups = [g["logGroupName"] for g in stack.client("logs").describe_log_groups()["logGroups"]]
    assert stack.template.conditions["WriteApiAccessLogs"] is False
    assert not any("ApiAccessLogGroup" in name for name in groups)
    assert "/aws/vendedlogs/states/mlops-mlops" in groups


def test_the_cli_starts_watches_and_draws_a_run(stack, tmp_path, capsys) -> None:
    from local_runtime import cli

    assert cli.main(["start", "--endpoint-url", stack.endpoint_url, "--input", '{"trigger": "cron"}']) == 0
    arn = capsys.readouterr().out.strip()
    assert arn.startswith(stack.state_machine_arn.replace(":stateMachine:", ":execution:"))
    assert cli.main(["watch", "--endpoint-url", stack.endpoint_url, arn]) == 1  # the run fails: bad trigger
    picture = tmp_path / "run.svg"
    assert cli.main(["graph", "--endpoint-url", stack.endpoint_url, arn, "-o", str(picture)]) == 0
    svg = picture.read_text()
    assert svg.startswith("<svg") and "Check run input: caught" in svg and "Run failed: failed" in svg


def test_two_functions_that_set_one_variable_differently_are_refused() -> None:
    from local_runtime.lambdas import LambdaRuntime, LocalFunction

    runtime = LambdaRuntime()
    folder = ROOT / "functions" / "validate_input"
    runtime.add(LocalFunction("first", folder, "app.lambda_handler", {"TABLE": "a", "SHARED": "x"}))
    runtime.add(LocalFunction("second", folder, "app.lambda_handler", {"SHARED": "x"}))
    with pytest.raises(ValueError, match="third and first set TABLE differently"):
        runtime.add(LocalFunction("third", folder, "app.lambda_handler", {"TABLE": "b"}))


def test_a_task_token_nothing_waits_for_is_refused_with_step_functions_error(stack) -> None:
    sfn = stack.client("stepfunctions")
    for send in (
        lambda: sfn.send_task_success(taskToken="no-such-token", output="{}"),
        lambda: sfn.send_task_failure(taskToken="no-such-token", error="ModelRejected", cause="late"),
    ):
        with pytest.raises(sfn.exceptions.InvalidToken):
            send()


def test_execution_input_over_256_kib_is_refused_as_aws_refuses_it(stack) -> None:
    sfn = stack.client("stepfunctions")
    too_big = json.dumps({"trigger": "manual", "padding": "x" * (256 * 1024)})
    with pytest.raises(sfn.exceptions.ClientError, match="Member must have length less than or equal to 262144"):
        sfn.start_execution(stateMachineArn=stack.state_machine_arn, input=too_big)


def test_the_deploy_packages_code_as_sam_package_does_and_publishes_the_model_code(stack) -> None:
    s3 = stack.client("s3")
    assert stack.packaging_bucket.startswith("aws-sam-cli-managed-default-samclisourcebucket-")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.packaging_bucket)["Contents"]]
    assert keys and all(k.startswith(f"{stack.stack_name}/") for k in keys)
    job = stack.client("glue").get_job(JobName="mlops-prepare-data")["Job"]
    assert job["Command"]["ScriptLocation"].startswith(f"s3://{stack.packaging_bucket}/{stack.stack_name}/")
    model_code = stack.template.attributes["ModelCode"]["Uri"]
    bucket, key = model_code.removeprefix("s3://").split("/", 1)
    assert bucket == stack.outputs["ArtifactsBucketName"] and key.startswith("code/model-source-")
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        assert sorted(tar.getnames()) == ["inference.py", "train.py"]


def test_describe_state_machine_returns_the_definition_as_created(stack) -> None:
    sfn = stack.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
    assert "arn:aws:states:::sagemaker:createTrainingJob.sync" in definition
    assert "arn:aws:states:::glue:startJobRun.sync" in definition
    assert "local-" not in definition
    arn = pipeline.start(stack, {"bogus": "described"})
    pipeline.finish(stack, arn)
    for_execution = sfn.describe_state_machine_for_execution(executionArn=arn)
    assert for_execution["definition"] == definition
