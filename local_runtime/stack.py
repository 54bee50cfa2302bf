"""A local stack: starts AWS on localhost and deploys template.yaml into it.

    with LocalStack(ROOT, overrides={"NotificationEmail": "me@example.com"}) as stack:
        stack.client("s3").put_object(...)

Everything listens on 127.0.0.1 on free ports, and ``close()`` (also on Ctrl-C) stops every
thread, server and child process it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_runtime.api import LocalApi, Route
from local_runtime.gateway import Gateway
from local_runtime.glue import LocalGlue
from local_runtime.lambdas import LambdaRuntime, LocalFunction
from local_runtime.mocking import PROVIDER as MOCK_PROVIDER
from local_runtime.mocking import MockConfig, MockConfigError
from local_runtime.sagemaker import LocalSageMaker
from local_runtime.template import ACCOUNT, REGION, Template, UnsupportedTemplate, load_template

# .sync integrations moto's engine cannot run, and the local provider that stands in for each.
SYNC_PROVIDERS = {
    "arn:aws:states:::sagemaker:createTrainingJob.sync": "local-sagemaker-createTrainingJob-sync",
    "arn:aws:states:::sagemaker:createTransformJob.sync": "local-sagemaker-createTransformJob-sync",
    "arn:aws:states:::glue:startJobRun.sync": "local-glue-startJobRun-sync",
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Server:
    """A werkzeug server on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"server-{self.port}")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class LocalStack:
    def __init__(
        self,
        root: Path,
        stack_name: str = "sfn-mlops",
        overrides: dict[str, str] | None = None,
        workdir: Path | None = None,
        mock_config: Path | None = None,
    ) -> None:
        self.root = root
        self.stack_name = stack_name
        self.overrides = {"NotificationEmail": "reviewer@example.com", **(overrides or {})}
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sfn-mlops-local-"))
        self.lambdas = LambdaRuntime()
        self.sagemaker = LocalSageMaker(self._s3, self.workdir)
        self.glue = LocalGlue(self._s3, self.workdir)
        self.api_key = secrets.token_urlsafe(24)
        self.outputs: dict[str, str] = {}
        self.inbox_queue_urls: list[str] = []
        # Messages a caller has read from the inbox and wants to keep looking at.
        self.mail: list[dict[str, Any]] = []
        self._servers: list[_Server] = []
        self._rules: list[tuple[str, str, dict[str, Any]]] = []
        self._stopping = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self.template: Template | None = None
        mock_path = mock_config or root / "statemachine" / "test" / "MockConfigFile.json"
        self.mocks = MockConfig.load(mock_path) if mock_path.exists() else MockConfig({})
        self._case_machines: dict[str, str] = {}
        self._case_lock = threading.Lock()

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> LocalStack:
        handlers = {
            "arn:aws:states:::sagemaker:createTrainingJob.sync": lambda r: self.sagemaker.run_sync("training", r),
            "arn:aws:states:::sagemaker:createTransformJob.sync": lambda r: self.sagemaker.run_sync("transform", r),
            "arn:aws:states:::glue:startJobRun.sync": self.glue.run_sync,
        }
        for resource, provider in SYNC_PROVIDERS.items():
            self.lambdas.add_provider(provider, handlers[resource])
        self.lambdas.add_provider(MOCK_PROVIDER, self.mocks.answer)
        moto_app = DomainDispatcherApplication(create_backend_app)
        gateway = Gateway(moto_app, self.lambdas, self.sagemaker, self.rewrite_definition, self.test_case_machine)
        aws = _Server(gateway)
        self._servers.append(aws)
        self.endpoint_url = f"http://127.0.0.1:{aws.port}"
        self._set_env(
            {
                **CREDENTIALS,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # moto's ASL engine calls services at localhost:MOTO_PORT.
                "MOTO_PORT": str(aws.port),
            }
        )
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        self.deploy()
        threading.Thread(target=self._deliver_rule_events, daemon=True, name="eventbridge-delivery").start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self.sagemaker.stop()
        self.glue.stop()
        if self._servers:
            # moto keeps its state in the process; the next stack starts from an empty account.
            requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    # --------------------------------------------------------------- clients
    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(retries={"max_attempts": 2}),
        )

    @cache  # noqa: B019 - one client per stack for the providers' S3 copies
    def _s3(self) -> Any:
        return self.client("s3")

    # ----------------------------------------------------------------- deploy
    def deploy(self) -> None:
        template = load_template(self.root / "template.yaml", self.stack_name, self.overrides)
        self.template = template
        api_ids = template.of_type("AWS::Serverless::Api")
        for api in api_ids:
            template.physical_ids[f"{api}ApiKey"] = f"local-{api.lower()}-key"
        known = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::IAM::Role": self._role,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::Glue::Job": self._glue_job,
            "AWS::Serverless::Api": lambda logical_id: None,  # served by _api once the functions exist
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
        }
        unsupported = sorted({r["Type"] for r in template.resources.values()} - set(known))
        if unsupported:
            raise UnsupportedTemplate(f"the local runtime cannot deploy {', '.join(unsupported)} yet")
        for api in api_ids:
            self._api(api)
        # The state machine goes last: its definition refers to everything else.
        wanted = [
            r for r, spec in template.resources.items() if template.conditions.get(spec.get("Condition", ""), True)
        ]
        ordered = sorted(wanted, key=lambda r: template.resources[r]["Type"] == "AWS::Serverless::StateMachine")
        for logical_id in ordered:
            known[template.resources[logical_id]["Type"]](logical_id)
        self.outputs = {k: str(template.resolve(v["Value"])) for k, v in template.body.get("Outputs", {}).items()}

    def _bucket(self, logical_id: str) -> None:
        assert self.template
        name, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in props:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _bucket_policy(self, logical_id: str) -> None:
        """Applies the policy, less TLS-only statements: the local endpoint is plain HTTP on loopback."""
        assert self.template
        props = self.template.properties(logical_id)
        document = props["PolicyDocument"]
        kept = [
            statement
            for statement in document["Statement"]
            if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
        ]
        if kept:
            policy = json.dumps({**document, "Statement": kept})
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=policy)

    def _table(self, logical_id: str) -> None:
        assert self.template
        name, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            SSESpecification={"Enabled": bool(props.get("SSESpecification", {}).get("SSEEnabled"))},
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    def _topic(self, logical_id: str) -> None:
        assert self.template
        arn, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        sns, sqs = self.client("sns"), self.client("sqs")
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        sns.create_topic(Name=arn.rsplit(":", 1)[1], Attributes=attributes)
        for index, subscription in enumerate(props.get("Subscription", [])):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
            if subscription["Protocol"] == "email":
                # Locally, an SQS queue receives what the email address would.
                queue = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}-email-{index}")["QueueUrl"]
                queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
                self.inbox_queue_urls.append(queue)

    def _log_group(self, logical_id: str) -> None:
        assert self.template
        self.client("logs").create_log_group(logGroupName=self.template.physical_ids[logical_id])

    def _role(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        iam = self.client("iam")
        name = self.template.physical_ids[logical_id]
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )

    def _alarm(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        self.client("cloudwatch").put_metric_alarm(
            **{k: v for k, v in props.items() if k not in ("AlarmActions", "OKActions", "InsufficientDataActions")}
        )

    def _glue_job(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        script = self.root / props["Command"]["ScriptLocation"]
        self.client("glue").create_job(
            Name=props["Name"],
            Role=props["Role"],
            Command={**props["Command"], "ScriptLocation": f"file://{script}"},
            GlueVersion=props.get("GlueVersion", "5.0"),
        )
        self.glue.add_job(props["Name"], script)

    def _function(self, logical_id: str) -> None:
        assert self.template
        settings = self.template.function_settings(logical_id)
        function = LocalFunction(
            self.template.physical_ids[logical_id],
            self.root / settings["CodeUri"],
            settings["Handler"],
            settings["Environment"]["Variables"],
            **settings,
        )
        self.lambdas.add(function)
        # Handlers read their configuration from os.environ, which the process shares.
        self._set_env(function.environment)

    def _api(self, logical_id: str) -> None:
        assert self.template
        template = self.template
        props = template.properties(logical_id)
        routes = []
        for function_id, resource in template.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                event_props = event.get("Properties", {})
                if event["Type"] == "Api" and event_props.get("RestApiId", {}).get("Ref") == logical_id:
                    routes.append(
                        Route(
                            event_props["Method"].upper(),
                            event_props["Path"],
                            template.physical_ids[function_id],
                            bool(
                                event_props.get("Auth", {}).get(
                                    "ApiKeyRequired", props.get("Auth", {}).get("ApiKeyRequired")
                                )
                            ),
                        )
                    )
        stage = props["StageName"]
        server = _Server(LocalApi(self.lambdas, stage, routes, self.api_key))
        self._servers.append(server)
        remote = f"https://{template.physical_ids[logical_id]}.execute-api.{REGION}.amazonaws.com"
        template.local_urls[remote] = f"http://127.0.0.1:{server.port}"
        self.api_url = f"http://127.0.0.1:{server.port}/{stage}"

    def _state_machine(self, logical_id: str) -> None:
        assert self.template
        template = self.template
        props = template.properties(logical_id)
        definition = (self.root / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        arn = template.physical_ids[logical_id]
        sfn = self.client("stepfunctions")
        sfn.create_state_machine(
            name=arn.rsplit(":", 1)[1],
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{self.stack_name}-{logical_id}-role",
            type=props.get("Type", "STANDARD"),
        )
        self.state_machine_arn = arn
        for event_name, event in template.resources[logical_id].get("Properties", {}).get("Events", {}).items():
            event_props = template.resolve(event.get("Properties", {}))
            if event["Type"] == "EventBridgeRule":
                self._rule(f"{self.stack_name}-{event_name}", arn, event_props)
            elif event["Type"] in ("ScheduleV2", "Schedule"):
                self.client("scheduler").create_schedule(
                    Name=f"{self.stack_name}-{event_name}",
                    ScheduleExpression=event_props["ScheduleExpression"],
                    State=event_props.get("State", "ENABLED"),
                    FlexibleTimeWindow={"Mode": "OFF"},
                    Target={
                        "Arn": arn,
                        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
                        "Input": event_props.get("Input", "{}"),
                    },
                )
            else:
                raise UnsupportedTemplate(f"state machine event type {event['Type']} is not supported locally")

    def _rule(self, name: str, state_machine_arn: str, props: dict[str, Any]) -> None:
        """The rule matches in moto's EventBridge; an SQS target hands matches to the delivery thread."""
        events, sqs = self.client("events"), self.client("sqs")
        queue = sqs.create_queue(QueueName=f"{name}-delivery")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "state-machine", "Arn": queue_arn}])
        self._rules.append((queue, state_machine_arn, props.get("InputTransformer", {})))

    def _deliver_rule_events(self) -> None:
        sqs, sfn = self.client("sqs"), self.client("stepfunctions")
        while not self._stopping.is_set():
            for queue, state_machine_arn, transformer in self._rules:
                try:
                    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                except Exception:
                    if self._stopping.is_set():
                        return
                    raise
                for message in messages:
                    event = moto_s3_event_as_aws_sends_it(json.loads(message["Body"]))
                    sfn.start_execution(stateMachineArn=state_machine_arn, input=transform_input(event, transformer))
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            self._stopping.wait(0.1)

    # ---------------------------------------------------- definition mapping
    def rewrite_definition(self, name: str, definition: str) -> str:
        """Maps the .sync Resources moto's engine cannot run to local providers, when registering."""
        document = json.loads(definition)
        self._map_resources(document)
        return json.dumps(document)

    def _map_resources(self, node: Any) -> None:
        if isinstance(node, dict):
            resource = node.get("Resource")
            if node.get("Type") == "Task" and resource in SYNC_PROVIDERS:
                node["Resource"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{SYNC_PROVIDERS[resource]}"
            for value in node.values():
                self._map_resources(value)
        elif isinstance(node, list):
            for value in node:
                self._map_resources(value)

    def test_case_machine(self, arn_with_case: str) -> str:
        """The machine that runs a mock-config test case: a copy whose mocked states answer from the file."""
        machine_arn, case = arn_with_case.split("#", 1)
        name = machine_arn.rsplit(":", 1)[1]
        with self._case_lock:
            if arn_with_case not in self._case_machines:
                sfn = self.client("stepfunctions")
                definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"])
                try:
                    rewritten = self.mocks.rewrite(definition, name, case)
                except MockConfigError as error:
                    raise ValueError(str(error)) from None
                self._case_machines[arn_with_case] = sfn.create_state_machine(
                    name=f"{name}--{case}"[:80],
                    definition=json.dumps(rewritten),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/{self.stack_name}-test-case-role",
                )["stateMachineArn"]
        return self._case_machines[arn_with_case]

    # ------------------------------------------------------------- executions
    def executions(self) -> set[str]:
        listing = self.client("stepfunctions").list_executions(stateMachineArn=self.state_machine_arn)
        return {e["executionArn"] for e in listing["executions"]}

    def next_execution(self, known: set[str], timeout: float = 30) -> str:
        """The execution that started after ``known`` was taken, such as one an S3 upload triggered."""
        return wait_for(lambda: next(iter(self.executions() - known), None), timeout, what="a new execution")

    # ------------------------------------------------------------------ inbox
    def read_inbox(self) -> list[dict[str, Any]]:
        """SNS messages delivered to the email subscriptions since the last read."""
        sqs = self.client("sqs")
        received = []
        for queue in self.inbox_queue_urls:
            while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    received.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return received


def moto_s3_event_as_aws_sends_it(event: dict[str, Any]) -> dict[str, Any]:
    """moto names the object's ETag ``eTag``; S3's EventBridge events call it ``etag``."""
    obj = event.get("detail", {}).get("object", {})
    if event.get("source") == "aws.s3" and "eTag" in obj and "etag" not in obj:
        obj["etag"] = obj.pop("eTag")
    return event


def transform_input(event: dict[str, Any], transformer: dict[str, Any]) -> str:
    """EventBridge's InputTransformer for the simple ``$.a.b`` paths templates use."""
    if not transformer:
        return json.dumps(event)
    values = {}
    for name, path in transformer.get("InputPathsMap", {}).items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[name] = value
    text = transformer["InputTemplate"]
    for name, value in values.items():
        text = text.replace(f'"<{name}>"', json.dumps(value if isinstance(value, str) else json.dumps(value)))
        text = text.replace(f"<{name}>", json.dumps(value))
    return text


def wait_for(probe: Any, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
