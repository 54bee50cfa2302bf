"""The local runtime deploys SAM apps other than this project's: the examples/ apps end to end, resources it
cannot deploy skipped and refused when named, no parameter the template does not declare, and schedules."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from local_runtime.cli import deployment_for, parser
from local_runtime.stack import LocalDeployment, wait_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

RELAY_FUNCTION = """
import json, os
import boto3

def handler(event, context):
    message = event["Records"][0]["Sns"]["Message"]
    boto3.client("sqs").send_message(QueueUrl=os.environ["RELAYED_QUEUE_URL"], MessageBody=message)
"""
STREAM_FUNCTION = """
import os
import boto3

def handler(event, context):
    boto3.client("kinesis").put_record(StreamName=os.environ["STREAM_NAME"], Data=b"x", PartitionKey="k")
"""


def _app(folder: Path, template: str, code: str) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "app.py").write_text(code)
    (folder / "template.yaml").write_text(template)
    return folder


def test_an_order_posted_to_the_http_api_is_stored_by_the_function_its_queue_triggers() -> None:
    with LocalDeployment(EXAMPLES / "order-queue", "order-queue") as stack:
        assert stack.skipped == []
        refused = requests.post(stack.outputs["OrdersUrl"], json={"note": "no item"}, timeout=10)
        placed = requests.post(stack.outputs["OrdersUrl"], json={"item": "tea"}, timeout=10)
        assert refused.status_code == 400
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["orderId"]
        dynamodb = stack.client("dynamodb")
        key = {"orderId": {"S": order_id}}
        stored = wait_for(
            lambda: dynamodb.get_item(TableName=stack.outputs["OrdersTableName"], Key=key).get("Item"),
            10,
            what="the order in the table",
        )
        assert stored["item"] == {"S": "tea"}
        # Taken off the queue once the function succeeded.
        sqs = stack.client("sqs")
        queue = stack.template.physical_ids["OrderQueue"]
        assert sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0).get("Messages") is None


def test_the_fired_schedule_runs_the_inline_state_machine_and_the_report_lands_in_the_inbox() -> None:
    with LocalDeployment(EXAMPLES / "scheduled-report", "scheduled-report", fire_schedules=True) as stack:
        sfn, machine = stack.client("stepfunctions"), stack.outputs["ReportMachineArn"]
        emails = wait_for(stack.read_inbox, 15, what="the report email")
        assert emails[0]["Subject"] == "Daily report"
        assert emails[0]["Message"] == f"42 orders on {datetime.now(UTC).date().isoformat()}"
        # The morning schedule fired once; the hourly one is disabled and never does.
        (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["input"]) == {"source": "schedule"}
        scheduler = stack.client("scheduler")
        assert [s["State"] for s in scheduler.list_schedules()["Schedules"]] == ["ENABLED"]


def test_a_schedule_fires_on_its_expression_and_a_disabled_one_never_does(tmp_path: Path) -> None:
    # Far enough ahead that a deploy on a loaded machine is over before the moment comes.
    moment = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
    soon = moment.strftime("%Y-%m-%dT%H:%M:%S")
    template = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  Alerts:
    Type: AWS::SNS::Topic
  Relayed:
    Type: AWS::SQS::Queue
  SchedulerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{{Effect: Allow, Principal: {{Service: scheduler.amazonaws.com}}, Action: sts:AssumeRole}}]
  Soon:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at({soon})
      FlexibleTimeWindow: {{Mode: "OFF"}}
      Target: {{Arn: !Ref Alerts, RoleArn: !GetAtt SchedulerRole.Arn, Input: "on time"}}
  Paused:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at({soon})
      State: DISABLED
      FlexibleTimeWindow: {{Mode: "OFF"}}
      Target: {{Arn: !Ref Alerts, RoleArn: !GetAtt SchedulerRole.Arn, Input: "never"}}
  RelayFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src/
      Handler: app.handler
      Environment: {{Variables: {{RELAYED_QUEUE_URL: !Ref Relayed}}}}
      Policies: [SQSSendMessagePolicy: {{QueueName: !GetAtt Relayed.QueueName}}]
      Events:
        Alert: {{Type: SNS, Properties: {{Topic: !Ref Alerts}}}}
"""
    with LocalDeployment(_app(tmp_path, template, RELAY_FUNCTION), "soon") as stack:
        sqs, queue = stack.client("sqs"), stack.template.physical_ids["Relayed"]
        assert datetime.now(UTC) < moment, "the deploy took longer than the test allows for"
        assert sqs.receive_message(QueueUrl=queue).get("Messages") is None  # not before its time

        def received() -> list[dict]:
            reply = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, AttributeNames=["SentTimestamp"])
            return reply.get("Messages", [])

        messages = wait_for(received, 30)
        assert [m["Body"] for m in messages] == ["on time"]
        # Sent at its moment (the relay runs after the schedule fires), not before it.
        sent = datetime.fromtimestamp(int(messages[0]["Attributes"]["SentTimestamp"]) / 1000, UTC)
        assert moment <= sent < moment + timedelta(seconds=10)
        time.sleep(1.5)
        assert sqs.receive_message(QueueUrl=queue).get("Messages") is None


HELLO_FUNCTION = """
import json

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"message": "hello " + event["pathParameters"]["name"]})}
"""


def test_sam_inits_hello_world_is_served_on_the_implicit_rest_api_and_its_output_url_resolves(
    tmp_path: Path,
) -> None:
    template = """
Transform: AWS::Serverless-2016-10-31
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: src/
      Handler: app.handler
      Events:
        HelloWorld: {Type: Api, Properties: {Path: "/hello/{name}", Method: get}}
Outputs:
  HelloWorldApi:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"
"""
    with LocalDeployment(_app(tmp_path, template, HELLO_FUNCTION), "hello") as stack:
        assert stack.skipped == []
        # The output names the API's local URL, at SAM's stage Prod.
        assert stack.outputs["HelloWorldApi"] == stack.api_urls["ServerlessRestApi"] + "/hello/"
        assert stack.api_urls["ServerlessRestApi"].endswith("/Prod")
        reply = requests.get(stack.outputs["HelloWorldApi"] + "world", timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"message": "hello world"})
        assert requests.post(stack.outputs["HelloWorldApi"] + "world", timeout=10).status_code == 403


UPLOAD_FUNCTION = """
import json, os
import boto3

def handler(event, context):
    (record,) = event["Records"]
    s3 = record["s3"]
    body = {"event": record["eventName"], "bucket": s3["bucket"]["name"], "key": s3["object"]["key"]}
    boto3.client("sqs").send_message(QueueUrl=os.environ["SEEN_QUEUE_URL"], MessageBody=json.dumps(body))
"""


def test_an_object_put_under_the_filtered_prefix_invokes_the_function_its_s3_event_names(tmp_path: Path) -> None:
    template = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Uploads:
    Type: AWS::S3::Bucket
  Seen:
    Type: AWS::SQS::Queue
  OnUploadFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: src/
      Handler: app.handler
      Environment: {Variables: {SEEN_QUEUE_URL: !Ref Seen}}
      Policies: [SQSSendMessagePolicy: {QueueName: !GetAtt Seen.QueueName}]
      Events:
        Uploaded:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: incoming/}]}}
"""
    with LocalDeployment(_app(tmp_path, template, UPLOAD_FUNCTION), "uploads") as stack:
        assert stack.skipped == []
        s3, sqs = stack.client("s3"), stack.client("sqs")
        bucket, queue = stack.template.physical_ids["Uploads"], stack.template.physical_ids["Seen"]
        s3.put_object(Bucket=bucket, Key="elsewhere/a.csv", Body=b"ignored")
        s3.put_object(Bucket=bucket, Key="incoming/b.csv", Body=b"seen")

        messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 30)
        assert [json.loads(m["Body"]) for m in messages] == [
            {"event": "ObjectCreated:Put", "bucket": bucket, "key": "incoming/b.csv"}
        ]
        time.sleep(1)  # the other object, outside the prefix, invoked nothing
        assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages") is None


def test_a_resource_of_an_unknown_type_is_skipped_with_a_warning_and_a_call_naming_it_fails_clearly(
    tmp_path: Path, caplog
) -> None:
    template = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Clicks:
    Type: AWS::Kinesis::Stream
    Properties: {ShardCount: 1}
  RecordFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src/
      Handler: app.handler
      Environment: {Variables: {STREAM_NAME: !Ref Clicks}}
      Policies: [KinesisCrudPolicy: {StreamName: !Ref Clicks}]
"""
    with (
        caplog.at_level(logging.WARNING),
        LocalDeployment(_app(tmp_path, template, STREAM_FUNCTION), "clicks") as stack,
    ):
        assert stack.skipped == ["Clicks (AWS::Kinesis::Stream)"]
        assert any("Clicks" in r.message and "AWS::Kinesis::Stream" in r.message for r in caplog.records)
        reply = stack.client("lambda").invoke(FunctionName=stack.template.physical_ids["RecordFunction"])
        error = json.loads(reply["Payload"].read())
        assert reply["FunctionError"] == "Unhandled"
        assert "refers to Clicks (AWS::Kinesis::Stream), which the local runtime skipped" in error["errorMessage"]


def test_no_parameter_the_template_does_not_declare_is_added_and_the_port_is_the_one_asked_for(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    template = "Resources:\n  Notes:\n    Type: AWS::SQS::Queue\n"
    (tmp_path / "template.yaml").write_text(template)
    with LocalDeployment(tmp_path, "plain", port=port) as stack:
        assert stack.endpoint_url == f"http://127.0.0.1:{port}"
        (described,) = stack.client("cloudformation").describe_stacks(StackName="plain")["Stacks"]
        assert described.get("Parameters", []) == []
        assert stack.template.parameters == {}


def test_up_with_a_template_deploys_that_template_with_only_the_parameters_given() -> None:
    template = EXAMPLES / "scheduled-report" / "template.yaml"
    args = parser().parse_args(["up", "--template", str(template), "--port", "4599", "--fire-schedules",
                                "--parameter", "ReportEmail=me@example.com"])  # fmt: skip
    stack = deployment_for(args)
    assert stack.template_file == template
    assert stack.stack_name == "scheduled-report"
    assert stack.overrides == {"ReportEmail": "me@example.com"}
    assert (stack.port, stack.fire_schedules) == (4599, True)
