"""The local runtime's own contracts: the AWS CLI works against it, and it speaks AWS's error shapes."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pipeline
import pytest
from asl import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_config import ALLOWED_FIELDS

from local_runtime import actions
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment, wait_for
from local_runtime.template import UnsupportedTemplate, load_template


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides=PROJECT_PARAMETERS) as local:
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


def test_each_deployed_function_runs_with_its_own_roles_credentials_and_environment(stack) -> None:
    predict = stack.template.physical_ids["PredictFunction"]
    event = json.loads((ROOT / "events" / "predict.json").read_text())
    reply = stack.client("lambda").invoke(FunctionName=predict, Payload=json.dumps(event), LogType="Tail")
    assert json.loads(reply["Payload"].read())["statusCode"] == 503  # no endpoint yet, as asked of SageMaker
    log = base64.b64decode(reply["LogResult"]).decode()
    assert f'"function_name":"{predict}"' in log.replace(" ", "")
    # The handler's SageMaker call was checked against the predict function's role, and no other function's.
    callers = {who for who, action, _ in stack.access.decisions if action == "sagemaker:InvokeEndpoint"}
    assert callers == {stack.role_arn("PredictFunctionRole")}


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


def _cli_with_nothing_configured(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sfn-mlops` as a new user runs it: no AWS variables, no profile, only the endpoint `up` printed."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}  # fmt: skip
    return subprocess.run([str(ROOT / ".venv" / "bin" / "sfn-mlops"), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_the_cli_needs_only_the_endpoint_url_and_shows_the_local_inbox(stack, tmp_path) -> None:
    started = _cli_with_nothing_configured(tmp_path, "start", "--endpoint-url", stack.endpoint_url,
                                           "--input", '{"trigger": "cron"}')  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().startswith(stack.state_machine_arn.replace(":stateMachine:", ":execution:"))
    link = f"{stack.api_url}/approvals/{'A' * 32}"
    stack.client("sns").publish(TopicArn=stack.outputs["NotificationTopicArn"], Subject="Review model inbox-probe",
                                Message=f"Review and decide: {link}")  # fmt: skip
    shown = _cli_with_nothing_configured(tmp_path, "inbox", "--endpoint-url", stack.endpoint_url)
    assert shown.returncode == 0, shown.stderr
    assert "Review model inbox-probe" in shown.stdout and f"Review link: {link}" in shown.stdout
    # Looking does not take: the emails are still there for the next look (and for the tests' own reader).
    again = _cli_with_nothing_configured(tmp_path, "inbox", "--endpoint-url", stack.endpoint_url)
    assert "Review model inbox-probe" in again.stdout
    stack.read_inbox()


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
        assert sorted(tar.getnames()) == ["evaluate.py", "inference.py", "requirements.txt", "train.py"]
    # The same files unpacked beside the tarball, for the evaluation's Processing job.
    unpacked = stack.template.attributes["ModelCode"]["SourceUri"]
    assert unpacked == f"s3://{bucket}/{key.removesuffix('.tar.gz')}/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key.removesuffix(".tar.gz") + "/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == [
        "evaluate.py",
        "inference.py",
        "requirements.txt",
        "train.py",
    ]


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


def test_sagemaker_task_errors_carry_the_names_step_functions_gives_them(stack) -> None:
    sfn = stack.client("stepfunctions")
    deployed = json.loads(sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"])
    create_model = deployed["States"]["Create scoring model"]["Arguments"]
    create_model = {**create_model, "ModelName": "mlops-error-names", "Tags": []}
    create_model["PrimaryContainer"] = {**create_model["PrimaryContainer"], "ModelDataUrl": "s3://nowhere/model.tar.gz"}
    task = {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel"}
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Look up missing endpoint",
        "States": {
            "Look up missing endpoint": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
                "Arguments": {"EndpointName": "mlops-endpoint"},
                "Retry": [{"ErrorEquals": ["SageMaker.ThrottlingException"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["SageMaker.ValidationException"], "Next": "Create"}],
                "End": True,
            },
            "Create": {**task, "Arguments": create_model, "Next": "Create again"},
            "Create again": {
                **task,
                "Arguments": create_model,
                "Catch": [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }
    machine = sfn.create_state_machine(
        name="error-names", definition=json.dumps(definition), roleArn=stack.state_machine_role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    view = pipeline.finish(stack, arn, timeout=60)
    assert view.status == "SUCCEEDED"
    failures = [
        e["taskFailedEventDetails"] for e in sfn.get_execution_history(executionArn=arn)["events"]
        if e["type"] == "TaskFailed"
    ]  # fmt: skip
    assert [f["error"] for f in failures] == ["SageMaker.ValidationException", "SageMaker.AmazonSageMakerException"]
    assert failures[0]["cause"].startswith('Could not find endpoint "arn:aws:sagemaker:')
    assert "(Service: SageMaker, Status Code: 400, Request ID: " in failures[0]["cause"]
    assert failures[1]["cause"].startswith('Cannot create already existing model "arn:aws:sagemaker:')
    assert "(Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException;" in failures[1]["cause"]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"]) == definition


def test_lambda_invoke_honours_the_invocation_and_log_types(stack) -> None:
    lam = stack.client("lambda")
    function = stack.template.physical_ids["ValidateInputFunction"]
    event = json.loads((ROOT / "events" / "validate_input.json").read_text())
    event = json.dumps({**event, "input": {"bogus": True}})
    assert lam.invoke(FunctionName=function, InvocationType="DryRun", Payload=event)["StatusCode"] == 204
    queued = lam.invoke(FunctionName=function, InvocationType="Event", Payload=event)
    assert queued["StatusCode"] == 202 and queued["Payload"].read() == b""
    tailed = lam.invoke(FunctionName=function, LogType="Tail", Payload=event)
    log = base64.b64decode(tailed["LogResult"]).decode()
    assert log.startswith("START RequestId: ") and "REPORT RequestId: " in log
    assert "rejected run input" in log and tailed["FunctionError"] == "Unhandled"


def test_the_aws_cli_sees_the_stacks_functions_as_deployed(stack) -> None:
    lam = stack.client("lambda")
    name = stack.template.physical_ids["ValidateInputFunction"]
    assert name in {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    configuration = lam.get_function(FunctionName=name)["Configuration"]
    assert configuration["Runtime"] == "python3.13" and configuration["Handler"] == "app.lambda_handler"
    assert configuration["Role"].endswith(f":role/{stack.template.physical_ids['ValidateInputFunctionRole']}")


def test_the_readmes_deploy_commands_work_unchanged_against_the_local_endpoint(stack) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", stack.endpoint_url, "--output", "text"]

    def run(*args: str) -> str:
        return subprocess.run([*aws, *args], capture_output=True, text=True, env=env, check=True).stdout.strip()

    query = "Stacks[0].Outputs[?OutputKey=='{}'].OutputValue"
    assert run("cloudformation", "describe-stacks", "--stack-name", "sfn-mlops", "--query", query.format(
        "StateMachineArn")) == stack.state_machine_arn  # fmt: skip
    key_id = run("cloudformation", "describe-stacks", "--stack-name", "sfn-mlops", "--query", query.format("ApiKeyId"))
    key = run("apigateway", "get-api-key", "--api-key", key_id, "--include-value", "--query", "value")
    assert key == stack.api_key
    missing = subprocess.run([*aws, "cloudformation", "describe-stacks", "--stack-name", "other"],
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert missing.returncode != 0 and "Stack with id other does not exist" in missing.stderr


def test_a_multipart_upload_starts_one_run_as_s3_sends_one_event(stack) -> None:
    from boto3.s3.transfer import TransferConfig

    known = stack.executions()
    body = io.BytesIO(b"a,b,label\n" + b"1,2,x\n" * (7 * 1024 * 1024 // 6))
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3 = stack.client("s3")
    s3.upload_fileobj(body, stack.outputs["DataBucketName"], "raw/large.csv", Config=config)
    assert "-" in s3.head_object(Bucket=stack.outputs["DataBucketName"], Key="raw/large.csv")["ETag"]
    first = stack.next_execution(known)
    time.sleep(2)  # the second event moto emits would have been delivered by now
    assert stack.executions() - known == {first}
    sfn = stack.client("stepfunctions")
    run_input = json.loads(sfn.describe_execution(executionArn=first)["input"])
    assert run_input["key"] == "raw/large.csv" and run_input["etag"].endswith("-2")
    sfn.stop_execution(executionArn=first)


def test_the_shape_check_finds_missing_undefined_and_mistyped_members() -> None:
    from botocore_shapes import SESSION, shape_errors

    shape = SESSION.get_service_model("glue").operation_model("GetJobRun").output_shape
    assert shape_errors(shape, {"JobRun": {"Id": "jr_1", "JobRunState": "SUCCEEDED", "Attempt": 0}}) == []
    assert shape_errors(shape, {"JobRun": {"Id": 1, "JobRunState": "DONE", "Colour": "red"}}) == [
        "GetJobRunResponse.JobRun.Id: expected string, got int 1",
        "GetJobRunResponse.JobRun.JobRunState: 'DONE' is not one of "
        + str(shape.members["JobRun"].members["JobRunState"].enum),
        "GetJobRunResponse.JobRun: Colour is not a member of JobRun",
    ]
    describe = SESSION.get_service_model("sagemaker").operation_model("DescribeModel").output_shape
    assert "DescribeModelOutput: required member ModelName is missing" in shape_errors(describe, {})


not_objects = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(
    max_size=30) | st.lists(st.integers(), max_size=3)  # fmt: skip
unknown_fields = st.dictionaries(st.text(min_size=1, max_size=30).filter(lambda k: k not in ALLOWED_FIELDS),
                                 st.integers() | st.text(max_size=10), min_size=1, max_size=3)  # fmt: skip
huge_values = st.sampled_from(["trigger", "rawDataUri", "dataVersion", "accuracyThreshold", "x" * 200_000]).map(
    lambda field: {field: "y" * 200_000} if field != "x" * 200_000 else {field: 1}
) | st.just({"hyperparameters": {"n_estimators": "9" * 200_000}})


@pytest.mark.parametrize("text", ["Infinity", "NaN", '{"accuracyThreshold": -Infinity}', "{not json"])
def test_start_execution_refuses_input_that_is_not_json_as_step_functions_does(stack, text) -> None:
    sfn = stack.client("stepfunctions")
    before = stack.executions()
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=stack.state_machine_arn, input=text)
    assert stack.executions() == before


@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(run_input=not_objects | unknown_fields | huge_values)
def test_any_input_start_execution_accepts_ends_in_invalid_input_with_a_notification(stack, run_input) -> None:
    sfn = stack.client("stepfunctions")
    name = str(uuid.uuid4())
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(run_input))[
        "executionArn"
    ]
    view = pipeline.finish(stack, arn, timeout=60)
    assert view.status == "FAILED" and view.error == "InvalidInput"
    assert pipeline.path(view) == pipeline.INPUT_REFUSED
    assert len(view.cause) < 2000  # bad values are quoted short, whatever their size
    mailed = wait_for(lambda: [m for m in stack.read_inbox() if name in m["Message"]], timeout=10, what="the mail")
    assert mailed[0]["MessageAttributes"]["outcome"]["Value"] == "failed"
