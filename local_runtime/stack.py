"""A local stack: starts AWS on localhost and deploys a SAM template (template.yaml by default) into it.

    with LocalDeployment(ROOT, overrides={"NotificationEmail": "me@example.com"}) as stack:
        stack.client("s3").put_object(...)

Everything listens on 127.0.0.1 on free ports (the AWS endpoint on ``port`` when one is given), and
``close()`` (also on Ctrl-C) stops every thread, server and child process it started. Resources of a
type the local runtime cannot deploy are skipped with a warning and listed in ``stack.skipped``; a
request that names one of them (through its !Ref or !GetAtt) is refused with a message naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_runtime.access import AccessControl, AccessDenied, Principal
from local_runtime.activities import PROVIDER as ACTIVITY_PROVIDER
from local_runtime.activities import Activities, as_activity_task, is_activity
from local_runtime.api import Authorizer, LocalApi, Route
from local_runtime.cloudformation import StackDescription
from local_runtime.cognito import HostedSignIn
from local_runtime.gateway import Gateway
from local_runtime.glue import LocalGlue
from local_runtime.jsonata_engine import install as install_jsonata
from local_runtime.lambdas import LambdaRuntime, LocalFunction
from local_runtime.mocking import PROVIDER as MOCK_PROVIDER
from local_runtime.mocking import MockConfig, MockConfigError
from local_runtime.packaging import create_managed_bucket, s3_location, sam_package
from local_runtime.roles import managed_policy_documents, transformed_resources
from local_runtime.sagemaker import LocalSageMaker
from local_runtime.sagemaker.common import CONTAINER_PYTHON
from local_runtime.schedules import next_fire
from local_runtime.template import (
    ACCOUNT,
    REGION,
    SKIPPED_MARKER,
    Template,
    UnsupportedTemplate,
    is_custom_resource,
    load_template,
)

# This project's template asks for the reviewer's address and has no default for it; its own entry
# points (the CLI, the demo, the tests) pass this one.
PROJECT_PARAMETERS = {"NotificationEmail": "reviewer@example.com"}
# Function event sources that the local runtime wires up from what the SAM transform generates for them.
WIRED_FUNCTION_EVENTS = ("SQS", "SNS", "Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent")
# What the SAM transform generates for those event sources.
GENERATED_EVENT_TYPES = (
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::SNS::Subscription",
    "AWS::Lambda::EventSourceMapping",
)
# Served as routes of an API, not wired as a generated resource.
API_EVENTS = ("Api", "HttpApi")
# The API that SAM makes when a function's event of that type names none, and the property that names one.
IMPLICIT_APIS = {"Api": ("ServerlessRestApi", "RestApiId"), "HttpApi": ("ServerlessHttpApi", "ApiId")}


def implicit_api(template: Template, event_type: str) -> list[str]:
    """SAM's implicit API for ``event_type`` events (Api or HttpApi), if any function's event names no API."""
    name, reference = IMPLICIT_APIS[event_type]
    for resource in template.of_type("AWS::Serverless::Function").values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == event_type and reference not in event.get("Properties", {}):
                return [name]
    return []


# .sync integrations moto's engine cannot run, and the local provider that stands in for each.
SYNC_PROVIDERS = {
    "arn:aws:states:::sagemaker:createTrainingJob.sync": "local-sagemaker-createTrainingJob-sync",
    "arn:aws:states:::sagemaker:createTransformJob.sync": "local-sagemaker-createTransformJob-sync",
    "arn:aws:states:::sagemaker:createProcessingJob.sync": "local-sagemaker-createProcessingJob-sync",
    "arn:aws:states:::glue:startJobRun.sync": "local-glue-startJobRun-sync",
}
# SageMaker request-response and SDK tasks: moto's engine runs them, but names their errors its own way
# (a Retry on SageMaker.ThrottlingException could never match), so local providers answer them too.
SAGEMAKER_CALL = re.compile(r"^arn:aws:states:::(aws-sdk:)?sagemaker:([a-zA-Z]+)$")


def provider_for(resource: str) -> str | None:
    """The local provider that runs a Task's Resource, or None when moto's engine runs it as it is."""
    if resource in SYNC_PROVIDERS:
        return SYNC_PROVIDERS[resource]
    if match := SAGEMAKER_CALL.match(resource):
        return f"local-{'aws-sdk-' if match.group(1) else ''}sagemaker-{match.group(2)}"
    return None


def as_provider_task(state: dict[str, Any], provider: str, jsonata: bool) -> None:
    """Turns a Task into a callback to a local provider, which answers through SendTaskSuccess/Failure.

    A callback, rather than a plain Lambda task, lets the provider fail with exactly the Error and Cause the
    real integration gives; moto's engine would wrap a Lambda error in the function's error payload.
    """
    state["Resource"] = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    if jsonata:
        arguments = state.pop("Arguments", None)
        request = "{% $states.input %}" if arguments is None else arguments
        payload = {"request": request, "taskToken": "{% $states.context.Task.Token %}"}
        state["Arguments"] = {"FunctionName": provider, "Payload": payload}
        return
    parameters = state.pop("Parameters", None)
    wrapped = {"request.$": "$"} if parameters is None else {"request": parameters}
    state["Parameters"] = {"FunctionName": provider, "Payload": {**wrapped, "taskToken.$": "$$.Task.Token"}}


def query_language(node: dict[str, Any], inherited: str) -> str:
    """A state's query language: its own QueryLanguage, else its machine's (JSONPath by default)."""
    return node.get("QueryLanguage", inherited)


RESPONSES_BUCKET = "cloudformation-custom-resource-response-useast1"
log = logging.getLogger(__name__)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class DeployFailed(Exception):
    """A resource could not be created; the stack would roll back on AWS."""


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Server:
    """A werkzeug server on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"server-{self.port}")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class LocalDeployment:
    """One deployment of a SAM template on this machine: the local AWS endpoint, then the template's resources."""

    def __init__(
        self,
        root: Path,
        stack_name: str = "sfn-mlops",
        overrides: dict[str, str] | None = None,
        workdir: Path | None = None,
        mock_config: Path | None = None,
        template: str = "template.yaml",
        port: int = 0,
        fire_schedules: bool = False,
    ) -> None:
        """``root`` holds the template (``template``, relative to it); ``port`` fixes the AWS endpoint's port;
        ``fire_schedules`` fires every enabled schedule once right after the deploy."""
        self.root = root
        self.template_file = root / template
        self.stack_name = stack_name
        self.overrides = dict(overrides or {})
        self.port = port
        self.fire_schedules = fire_schedules
        # What the deploy skipped, as "<logical id> (<type>)", for the user to see.
        self.skipped: list[str] = []
        self._schedules: list[LocalSchedule] = []
        self._deploying = False
        self.api_url: str | None = None
        # Each API's local base URL (with its stage), by logical id.
        self.api_urls: dict[str, str] = {}
        self.state_machine_arn: str | None = None
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sfn-mlops-local-"))
        self.access = AccessControl()
        self.lambdas = LambdaRuntime()
        self.sagemaker = LocalSageMaker(self.client_as, self.access, self.workdir)
        self.glue = LocalGlue(self.client_as, self.access, self.workdir)
        self.api_key = secrets.token_urlsafe(24)
        self.outputs: dict[str, str] = {}
        self.inbox_queue_urls: list[str] = []
        # Messages a caller has read from the inbox and wants to keep looking at.
        self.mail: list[dict[str, Any]] = []
        self._servers: list[_Server] = []
        self._sign_in_server: _Server | None = None
        # (delivery queue, rule ARN, target): what a rule matched, sent on to the target by the delivery thread
        self._rules: list[tuple[str, str, dict[str, Any]]] = []
        # (queue, handler of a batch of its messages that returns the ones to delete): polled like _rules
        self._pollers: list[tuple[str, Any]] = []
        self._multipart_seen: dict[str, set[tuple[str, ...]]] = defaultdict(set)  # by rule queue
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/{uuid.uuid4()}"
        self._stopping = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self.template: Template | None = None
        # A mock config named explicitly must exist; the conventional one is read when there is one.
        mock_path = mock_config or root / "statemachine" / "test" / "MockConfigFile.json"
        self.mocks = MockConfig.load(mock_path) if mock_config or mock_path.exists() else MockConfig({})
        self._case_machines: dict[str, str] = {}
        self.activities = Activities()
        self._case_lock = threading.Lock()

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalDeployment:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> LocalDeployment:
        handlers = {
            "arn:aws:states:::sagemaker:createTrainingJob.sync": lambda r, c: self.sagemaker.run_sync("training", r, c),
            "arn:aws:states:::sagemaker:createTransformJob.sync": lambda r, c: self.sagemaker.run_sync(
                "transform", r, c
            ),
            "arn:aws:states:::sagemaker:createProcessingJob.sync": lambda r, c: self.sagemaker.run_sync(
                "processing", r, c
            ),
            "arn:aws:states:::glue:startJobRun.sync": self.glue.run_sync,
        }
        for resource, provider in SYNC_PROVIDERS.items():
            self.lambdas.add_provider(provider, handlers[resource])
        for api in self.sagemaker.operations():
            for sdk in (False, True):
                resource = f"arn:aws:states:::{'aws-sdk:' if sdk else ''}sagemaker:{api}"
                self.lambdas.add_provider(provider_for(resource), partial(self.sagemaker.run_call, api, sdk=sdk))
        self.lambdas.add_provider(MOCK_PROVIDER, self.mocks.answer)
        self.lambdas.add_provider(ACTIVITY_PROVIDER, self.activities.schedule)
        moto_app = DomainDispatcherApplication(create_backend_app)
        gateway = Gateway(
            moto_app,
            self.lambdas,
            self.sagemaker,
            self.glue,
            self.rewrite_definition,
            self.test_case_machine,
            self.access,
            self.describe,
            self.mocks,
            self.activities,
            self.refusal_for_skipped,
        )
        self.gateway = gateway
        aws = _Server(gateway, self.port)
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
        install_jsonata()  # JSONata states run in moto's in-process ASL engine
        self._deploying = True
        try:
            self.deploy()
        finally:
            self._deploying = False
        threading.Thread(target=self._deliver_rule_events, daemon=True, name="eventbridge-delivery").start()
        if self._schedules:
            threading.Thread(target=self._run_schedules, daemon=True, name="schedules").start()
        if self.fire_schedules:
            for schedule in self._schedules:
                if schedule.enabled:
                    self._fire(schedule)
        return self

    def close(self) -> None:
        self._stopping.set()
        self.sagemaker.stop()
        self.glue.stop()
        self.lambdas.close()
        if self._servers:
            self._stop_executions()
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

    def _stop_executions(self) -> None:
        """Stops the runs still going. moto's engine runs each in a thread of this process that outlives a reset,
        and a run waiting for a review would otherwise wake up later and call the next stack's endpoint. (moto
        ends a stopped run only when its current wait ends, as FAILED rather than ABORTED, but runs no further
        state.)"""
        sfn = self.client("stepfunctions")
        try:
            for machine in sfn.list_state_machines()["stateMachines"]:
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )
                for execution in (e for page in pages for e in page["executions"]):
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="the local stack closed")
        except (ClientError, BotoCoreError) as error:
            log.warning("could not stop the local stack's running executions: %s", error)

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    # --------------------------------------------------------------- clients
    def client(self, service: str, principal: Principal | None = None) -> Any:
        """A client of the local endpoint, as the account's administrator or as ``principal``."""
        credentials = principal.credentials if principal else {
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": CREDENTIALS["AWS_SESSION_TOKEN"],
        }  # fmt: skip
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 2}),
            **credentials,
        )

    @cache  # noqa: B019 - one client per role session, as a service holds one per job
    def client_as(self, service: str, role_arn: str, session: str) -> Any:
        return self.client(service, self.access.principal(role_arn, session))

    # ----------------------------------------------------------------- deploy
    def deploy(self) -> None:
        """Packages the template as `sam deploy` does, then creates what the packaged template declares."""
        admin = self.client("s3")
        self.packaging_bucket = create_managed_bucket(admin)
        admin.create_bucket(Bucket=RESPONSES_BUCKET)  # CloudFormation's, for custom resource responses
        packaged = sam_package(
            self.template_file,
            self.packaging_bucket,
            self.stack_name,
            self.workdir / "packaged.yaml",
            self.endpoint_url,
            CREDENTIALS,
        )
        template = load_template(packaged, self.stack_name, self.overrides)
        self.template = template
        api_ids = [*template.of_type("AWS::Serverless::Api"), *implicit_api(template, "Api")]
        http_api_ids = [*template.of_type("AWS::Serverless::HttpApi"), *implicit_api(template, "HttpApi")]
        for api in api_ids:
            # SAM's API key, in moto's API Gateway so `aws apigateway get-api-key --include-value` answers.
            key = self.client("apigateway").create_api_key(name=f"{api}ApiKey", value=self.api_key, enabled=True)
            template.physical_ids[f"{api}ApiKey"] = key["id"]
        generated = transformed_resources(template.body, template.parameters)
        template.name_generated(generated)
        for logical_id in [*api_ids, *http_api_ids]:
            if logical_id not in template.resources:  # SAM's implicit API: an id, as API Gateway makes one
                template.physical_ids[logical_id] = secrets.token_hex(5)
        self._generated = generated
        known = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::Logs::LogGroup": self._log_group,
            # Every role, declared or generated, and the managed policies they attach are made by _roles.
            "AWS::IAM::Role": lambda logical_id: None,
            "AWS::IAM::ManagedPolicy": lambda logical_id: None,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::Events::Rule": self._events_rule,
            "AWS::Glue::Job": self._glue_job,
            "AWS::Serverless::Api": lambda logical_id: None,  # served by _api once the functions exist
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
            # User pools are made before the roles that name them (see _user_pools).
            "AWS::Cognito::UserPool": lambda logical_id: None,
            "AWS::Cognito::UserPoolGroup": self._user_pool_group,
            "AWS::Cognito::UserPoolDomain": self._user_pool_domain,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::SSM::Parameter": self._ssm_parameter,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::Serverless::HttpApi": lambda logical_id: None,  # served by _http_api
            "AWS::StepFunctions::Activity": self._activity,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::Scheduler::Schedule": self._scheduler_schedule,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::Lambda::Permission": lambda logical_id: None,  # evaluated by the access control (_roles)
        }
        for logical_id, resource in template.resources.items():
            if resource["Type"] not in known and not is_custom_resource(resource["Type"]):
                template.skipped[logical_id] = resource["Type"]
                self.skipped.append(f"{logical_id} ({resource['Type']})")
                log.warning(
                    "skipped %s (%s): the local runtime cannot deploy that type; a request naming it fails",
                    logical_id,
                    resource["Type"],
                )
        self._user_pools()
        self._roles(generated)
        for api in api_ids:
            self._api(api)
        for api in http_api_ids:
            self._http_api(api)
        # Custom resources run once their functions exist; the state machine goes last, as its
        # definition refers to everything else.
        wanted = self._wanted()

        machines = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")

        def stage(logical_id: str) -> int:
            resource = template.resources[logical_id]
            if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" not in resource.get("Properties", {}):
                return -1  # before the queues that name it as their dead-letter queue
            return 2 if resource["Type"] in machines else 1 if is_custom_resource(resource["Type"]) else 0

        for logical_id in sorted((w for w in wanted if w not in template.skipped), key=stage):
            resource_type = template.resources[logical_id]["Type"]
            (self._custom_resource if is_custom_resource(resource_type) else known[resource_type])(logical_id)
        self._function_events(known)
        self.outputs = {k: str(template.resolve(v["Value"])) for k, v in template.body.get("Outputs", {}).items()}

    def describe(self) -> StackDescription:
        """The stack as DescribeStacks shows it; NoEcho parameters masked as CloudFormation masks them."""
        assert self.template
        declared = self.template.body.get("Parameters", {})
        return StackDescription(
            self.stack_id,
            self.stack_name,
            self.template.body.get("Description", ""),
            {k: "****" if declared.get(k, {}).get("NoEcho") else str(v) for k, v in self.template.parameters.items()},
            [
                (key, value, self.template.body["Outputs"][key].get("Description", ""))
                for key, value in self.outputs.items()
            ],
        )

    def _roles(self, generated: dict[str, dict[str, Any]]) -> None:
        """Every role of the transformed template, in moto's IAM and in the local access control."""
        assert self.template
        iam = self.client("iam")
        own = self._managed_policies()
        declared = {**managed_policy_documents, **{arn: document for arn, (document, _) in own.items()}}
        # A managed policy may name its roles itself (its Roles property) instead of the role naming it.
        attached_by_policy: dict[str, list[str]] = defaultdict(list)
        for arn, (_, roles) in own.items():
            for role in roles:
                attached_by_policy[role].append(arn)
        for logical_id, resource in generated.items():
            if resource["Type"] == "AWS::Lambda::Permission":
                props = self.template.resolve(resource["Properties"])
                function = props["FunctionName"]
                statement = {"Effect": "Allow", "Principal": {"Service": props["Principal"]},
                             "Action": props["Action"], "Resource": self._function_arn(function)}  # fmt: skip
                if "SourceArn" in props:
                    statement["Condition"] = {"ArnLike": {"aws:SourceArn": props["SourceArn"]}}
                # Keyed by name: a permission may name its function by ARN (SAM's authorizer permissions do).
                self.access.allow_function_invoke(self._function_arn(function).rsplit(":", 1)[1], statement)
            if resource["Type"] != "AWS::IAM::Role":
                continue
            props = self.template.resolve(resource.get("Properties", {}))
            name = self.template.physical_ids[logical_id]
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
            documents = []
            for policy in props.get("Policies", []):
                # SAM's generated policies leave out Version; IAM then reads them as 2012-10-17.
                document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
                iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
                documents.append(document)
            for arn in [*props.get("ManagedPolicyArns", []), *attached_by_policy.get(name, [])]:
                if arn not in declared:
                    log.warning("managed policy %s is unknown to the local runtime; it grants nothing here", arn)
                    continue
                documents.append(declared[arn])
                if arn.startswith(f"arn:aws:iam::{ACCOUNT}:"):
                    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            self.access.add_role(self.role_arn(logical_id), documents, props["AssumeRolePolicyDocument"])

    def _managed_policies(self) -> dict[str, tuple[dict[str, Any], list[str]]]:
        """The template's own managed policies, created in moto's IAM: ARN -> (document, roles it names)."""
        assert self.template
        iam, policies = self.client("iam"), {}
        for logical_id in self._wanted("AWS::IAM::ManagedPolicy"):
            props = self.template.properties(logical_id)
            arn = self.template.physical_ids[logical_id]
            document = {"Version": "2012-10-17", **props["PolicyDocument"]}
            iam.create_policy(
                PolicyName=arn.rsplit("/", 1)[1],
                Path=props.get("Path", "/"),
                PolicyDocument=json.dumps(document),
                Description=props.get("Description", ""),
            )
            policies[arn] = (document, props.get("Roles", []))
        return policies

    def role_arn(self, logical_id: str) -> str:
        """The ARN of one of the template's roles, by logical id."""
        assert self.template
        return f"arn:aws:iam::{ACCOUNT}:role/{self.template.physical_ids[logical_id]}"

    @staticmethod
    def _function_arn(name_or_arn: str) -> str:
        return (
            name_or_arn
            if name_or_arn.startswith("arn:")
            else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name_or_arn}"
        )

    def _execution_role(self, logical_id: str) -> str:
        """A function's or state machine's role: the one it names, or the one SAM generates for it."""
        assert self.template
        declared = self.template.properties(logical_id).get("Role")
        return declared or self.role_arn(f"{logical_id}Role")

    def _bucket(self, logical_id: str) -> None:
        assert self.template
        name, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in props:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled")),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            key = rules[0]["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
            if key:
                self.access.encryption_keys[f"arn:aws:s3:::{name}"] = key
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
        """The local access control evaluates the whole policy, with aws:SecureTransport true (see README).
        moto would read the loopback's plain HTTP as insecure, so it gets the policy less TLS-only statements."""
        assert self.template
        props = self.template.properties(logical_id)
        document = props["PolicyDocument"]
        self.access.bucket_policies[props["Bucket"]] = document
        kept = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s.get("Condition", {}))]
        if kept:
            self.client("s3").put_bucket_policy(
                Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": kept})
            )

    def _table(self, logical_id: str) -> None:
        assert self.template
        name, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            SSESpecification=_table_encryption(props.get("SSESpecification", {})),
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    def _topic(self, logical_id: str) -> None:
        assert self.template
        arn, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        sns = self.client("sns")
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        if not attributes.get("KmsMasterKeyId", "alias/aws/").startswith("alias/aws/"):
            self.access.encryption_keys[arn] = attributes["KmsMasterKeyId"]
        sns.create_topic(Name=arn.rsplit(":", 1)[1], Attributes=attributes)
        for index, subscription in enumerate(props.get("Subscription", [])):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
            if subscription["Protocol"] == "email":
                self._email_inbox(arn, f"{self.stack_name}-{logical_id}-email-{index}")

    def _email_inbox(self, topic_arn: str, queue_name: str) -> None:
        """Locally, an SQS queue receives what the email address would (`sfn-mlops inbox` reads *-email-N)."""
        sqs = self.client("sqs")
        queue = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.inbox_queue_urls.append(queue)

    def _log_group(self, logical_id: str) -> None:
        assert self.template
        name, props = self.template.physical_ids[logical_id], self.template.properties(logical_id)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name, **({"kmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {}))
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))

    def _alarm(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        self.client("cloudwatch").put_metric_alarm(
            **{k: v for k, v in props.items() if k not in ("AlarmActions", "OKActions", "InsufficientDataActions")}
        )

    def _glue_job(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        self.client("glue").create_job(
            Name=props["Name"],
            Role=props["Role"],
            Command=props["Command"],
            GlueVersion=props.get("GlueVersion", "5.0"),
            **{k: props[k] for k in ("Description", "DefaultArguments", "Timeout", "MaxRetries",
                                     "WorkerType", "NumberOfWorkers", "ExecutionProperty") if k in props},
        )  # fmt: skip
        self.glue.add_job(props["Name"], props["Command"]["ScriptLocation"], props["Role"])

    def _function(self, logical_id: str) -> None:
        """The function runs the code `sam package` uploaded, unzipped as Lambda unzips it."""
        assert self.template
        settings = self.template.function_settings(logical_id)
        name = self.template.physical_ids[logical_id]
        bucket, key = s3_location(settings["CodeUri"])
        code_dir = self.workdir / "lambda" / name
        archive = self.workdir / "lambda" / f"{name}.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        self.client("s3").download_file(bucket, key, str(archive))
        with zipfile.ZipFile(archive) as package:
            package.extractall(code_dir)
        function = LocalFunction(
            name,
            code_dir,
            settings["Handler"],
            settings["Environment"]["Variables"],
            # Lambda hands the role's credentials to the function's environment; locally the access key
            # in them is what names the role to the gateway's access checks.
            principal=self.access.assume(self._execution_role(logical_id), "lambda.amazonaws.com", name),
            endpoint_url=self.endpoint_url,
            **settings,
        )
        self.lambdas.add(function)
        # Registered with moto's Lambda too, so list-functions and get-function show it; Invoke stays local.
        self.client("lambda").create_function(
            FunctionName=name,
            Role=self._execution_role(logical_id),
            Code={"S3Bucket": bucket, "S3Key": key},
            **{k: settings[k] for k in ("Runtime", "Handler", "Description", "Timeout", "MemorySize",
                                        "Environment", "Architectures") if k in settings},
        )  # fmt: skip

    def update_custom_resource(self, logical_id: str) -> dict[str, str]:
        """What a redeploy sends a custom resource (an Update with the same properties); its new Data."""
        self._custom_resource(logical_id, "Update")
        assert self.template
        return self.template.attributes[logical_id]

    def _custom_resource(self, logical_id: str, request_type: str = "Create") -> None:
        """CloudFormation's custom resource contract: invoke the ServiceToken, wait for the PUT to ResponseURL."""
        assert self.template
        props = self.template.properties(logical_id)
        s3 = self.client("s3")
        request_id = str(uuid.uuid4())
        key = f"{self.stack_name}/{logical_id}/{request_id}"
        update = (
            {"PhysicalResourceId": self.template.physical_ids[logical_id], "OldResourceProperties": props}
            if request_type == "Update"
            else {}
        )
        event = {
            **update,
            "RequestType": request_type,
            "ServiceToken": props["ServiceToken"],
            "ResponseURL": s3.generate_presigned_url(
                "put_object", Params={"Bucket": RESPONSES_BUCKET, "Key": key}, ExpiresIn=7200
            ),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": self.template.resources[logical_id]["Type"],
            "ResourceProperties": props,
        }
        result = self.lambdas.invoke(props["ServiceToken"], json.dumps(event).encode())
        try:
            response = json.loads(s3.get_object(Bucket=RESPONSES_BUCKET, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            raise DeployFailed(f"{logical_id}: the custom resource sent no response ({result.payload})") from None
        if response.get("Status") != "SUCCESS":
            raise DeployFailed(f"{logical_id}: {request_type.upper()}_FAILED: {response.get('Reason')}")
        self.template.physical_ids[logical_id] = response.get("PhysicalResourceId", request_id)
        self.template.attributes[logical_id] = {k: str(v) for k, v in (response.get("Data") or {}).items()}

    def _wanted(self, resource_type: str | None = None) -> list[str]:
        """The resources (of one type) whose Condition holds, in template order."""
        assert self.template
        return [
            logical_id
            for logical_id, resource in self.template.resources.items()
            if resource_type in (None, resource["Type"])
            and self.template.conditions.get(resource.get("Condition", ""), True)
        ]

    def _user_pools(self) -> None:
        """Cognito chooses a pool's id, and roles name pools by it, so pools come first."""
        assert self.template
        cognito = self.client("cognito-idp")
        for logical_id in self._wanted("AWS::Cognito::UserPool"):
            props = self.template.properties(logical_id)
            settings = {k: props[k] for k in ("Policies", "AutoVerifiedAttributes", "UsernameAttributes",
                                              "MfaConfiguration", "AdminCreateUserConfig",
                                              "AccountRecoverySetting") if k in props}  # fmt: skip
            pool = cognito.create_user_pool(PoolName=props.get("UserPoolName", logical_id), **settings)["UserPool"]
            self.template.physical_ids[logical_id] = pool["Id"]

    def _user_pool_group(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        self.client("cognito-idp").create_group(**props)
        self.template.physical_ids[logical_id] = props["GroupName"]

    def _user_pool_domain(self, logical_id: str) -> None:
        """The domain's hosted sign-in pages are served by HostedSignIn on 127.0.0.1."""
        assert self.template
        props = self.template.properties(logical_id)
        self.client("cognito-idp").create_user_pool_domain(Domain=props["Domain"], UserPoolId=props["UserPoolId"])
        self.template.physical_ids[logical_id] = props["Domain"]
        if self._sign_in_server is None:
            self._sign_in_server = _Server(HostedSignIn(lambda: self.client("cognito-idp")))
            self._servers.append(self._sign_in_server)
        remote = f"https://{props['Domain']}.auth.{REGION}.amazoncognito.com"
        self.template.local_urls[remote] = f"http://127.0.0.1:{self._sign_in_server.port}"

    def _user_pool_client(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        client = self.client("cognito-idp").create_user_pool_client(**props)["UserPoolClient"]
        self.template.physical_ids[logical_id] = client["ClientId"]

    def _ssm_parameter(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        name = props.get("Name") or self.template.physical_ids[logical_id]
        self.client("ssm").put_parameter(
            Name=name, Type=props["Type"], Value=str(props["Value"]),
            **{k: props[k] for k in ("Description", "AllowedPattern", "Tier", "DataType") if k in props},
        )  # fmt: skip
        self.template.physical_ids[logical_id] = name

    def _props(self, logical_id: str) -> dict[str, Any]:
        """A resource's resolved properties, whether the template declares it or the SAM transform adds it."""
        assert self.template
        resource = self.template.resources.get(logical_id) or self._generated[logical_id]
        return self.template.resolve(resource.get("Properties", {}))

    def refusal_for_skipped(self, request_text: str, by_role: bool) -> str | None:
        """Why a request that names a skipped resource is refused; None for any other request. The deploy
        itself may store such a name (in a definition, a policy, an environment variable); using it fails."""
        if SKIPPED_MARKER not in request_text or (self._deploying and not by_role) or self.template is None:
            return None
        for logical_id in re.findall(re.escape(SKIPPED_MARKER) + r"([A-Za-z0-9]+)", request_text):
            if logical_id in self.template.skipped:
                return (
                    f"this request refers to {logical_id} ({self.template.skipped[logical_id]}), which the "
                    "local runtime skipped: it cannot deploy that type"
                )
        return None

    def _queue(self, logical_id: str) -> None:
        assert self.template
        props = self.template.properties(logical_id)
        names = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                 "VisibilityTimeout", "FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId")  # fmt: skip
        attributes = {name: str(props[name]).lower() if isinstance(props[name], bool) else str(props[name])
                      for name in names if name in props}  # fmt: skip
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        name = self.template.physical_ids[logical_id].rsplit("/", 1)[1]
        self.client("sqs").create_queue(QueueName=name, Attributes=attributes)

    def _queue_policy(self, logical_id: str) -> None:
        """The policy is kept in moto's SQS; the local access control does not evaluate queue policies."""
        assert self.template
        props = self.template.properties(logical_id)
        for queue_url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )

    def _activity(self, logical_id: str) -> None:
        assert self.template
        name = self.template.physical_ids[logical_id].rsplit(":", 1)[1]
        self.client("stepfunctions").create_activity(name=name)

    def _subscription(self, logical_id: str) -> None:
        """An SNS subscription: emails land in the local inbox, SQS subscriptions are moto's, and a function
        is invoked with SNS's event by the delivery thread, from a queue subscribed in its place."""
        assert self.template
        props = self._props(logical_id)
        topic, protocol, endpoint = props["TopicArn"], props["Protocol"], props["Endpoint"]
        sns, sqs = self.client("sns"), self.client("sqs")
        attributes = {k: json.dumps(props[k]) if isinstance(props[k], dict) else str(props[k]).lower()
                      for k in ("FilterPolicy", "RawMessageDelivery") if k in props}  # fmt: skip
        name = self.template.physical_ids[logical_id]
        if protocol in ("email", "email-json"):
            self._email_inbox(topic, f"{name}-email-{len(self.inbox_queue_urls)}")
        elif protocol == "sqs":
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=endpoint, Attributes=attributes)
        elif protocol == "lambda":
            queue = sqs.create_queue(QueueName=f"{name}-delivery")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            subscription = sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={k: v for k, v in attributes.items() if k == "FilterPolicy"},
            )
            self._pollers.append((queue, partial(self._invoke_with_sns, endpoint, subscription["SubscriptionArn"])))
        else:
            self.skipped.append(f"{logical_id} (SNS subscription with protocol {protocol})")
            log.warning("skipped %s: SNS protocol %s is not delivered locally", logical_id, protocol)

    def _invoke_with_sns(self, function: str, subscription_arn: str, messages: list[dict[str, Any]]) -> list[str]:
        """SNS invokes a function once per message, asynchronously; a message is taken once it is handed over."""
        for message in messages:
            envelope = json.loads(message["Body"])
            record = {"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": subscription_arn,
                      "Sns": {"SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                              "MessageAttributes": {}, "Subject": None, **envelope}}  # fmt: skip
            payload = json.dumps({"Records": [record]}).encode()
            threading.Thread(target=self.lambdas.invoke, args=(function, payload), daemon=True).start()
        return [m["ReceiptHandle"] for m in messages]

    def _event_source_mapping(self, logical_id: str) -> None:
        """SQS event sources: the delivery thread polls the queue and invokes the function with a batch,
        deleting the batch only when the function succeeds (a failed batch comes back after its visibility
        timeout, as with Lambda). Stream sources (Kinesis, DynamoDB) are skipped."""
        props = self._props(logical_id)
        source = props["EventSourceArn"]
        if ":sqs:" not in source:
            self.skipped.append(f"{logical_id} (event source mapping from {source})")
            log.warning("skipped %s: only SQS event sources are polled locally, not %s", logical_id, source)
            return
        if props.get("Enabled", True) in (False, "false"):
            return
        batch_failures = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        handler = partial(self._invoke_with_sqs, props["FunctionName"], source, batch_failures)
        self._pollers.append((_queue_url(source), handler))

    def _invoke_with_sqs(
        self, function: str, queue_arn: str, batch_failures: bool, messages: list[dict[str, Any]]
    ) -> list[str]:
        records = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
             "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION}
            for m in messages
        ]  # fmt: skip
        result = self.lambdas.invoke(function, json.dumps({"Records": records}).encode())
        if result.function_error:
            log.warning("%s failed on a batch from %s: %s", function, queue_arn, result.payload)
            return []
        if batch_failures and isinstance(result.payload, dict):
            failed = {f.get("itemIdentifier") for f in result.payload.get("batchItemFailures") or []}
            return [m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed]
        return [m["ReceiptHandle"] for m in messages]

    def _function_events(self, known: dict[str, Any]) -> None:
        """Function event sources, from what the SAM transform generates for them (rules, schedules,
        subscriptions, event source mappings, named function + event), deployed as declared ones are."""
        assert self.template
        for function_id in self._wanted("AWS::Serverless::Function"):
            events = self.template.resources[function_id].get("Properties", {}).get("Events", {})
            for event_name, event in events.items():
                if event["Type"] in API_EVENTS:
                    continue
                if event["Type"] == "S3":
                    self._s3_notification(function_id, event_name, self.template.resolve(event["Properties"]))
                    continue
                if event["Type"] not in WIRED_FUNCTION_EVENTS:
                    self.skipped.append(f"{function_id} event {event_name} ({event['Type']} event source)")
                    log.warning("skipped %s's %s event source %s", function_id, event["Type"], event_name)
                    continue
                for logical_id, resource in self._generated.items():
                    if (
                        logical_id.startswith(function_id + event_name)
                        and logical_id not in self.template.resources
                        and resource["Type"] in GENERATED_EVENT_TYPES
                    ):
                        known[resource["Type"]](logical_id)

    def _s3_notification(self, function_id: str, event_name: str, props: dict[str, Any]) -> None:
        """S3 invoking a function on object events. moto's S3 notifies a delivery queue, with the event's
        events and key filter, and the delivery thread invokes the function asynchronously with S3's event,
        as S3 does. GetBucketNotificationConfiguration therefore shows a queue where AWS shows the function."""
        assert self.template
        bucket, sqs, s3 = props["Bucket"], self.client("sqs"), self.client("s3")
        queue = sqs.create_queue(QueueName=f"{self.stack_name}-{function_id}{event_name}-s3"[:80])["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
        notification: dict[str, Any] = {"Id": f"{function_id}{event_name}", "QueueArn": queue_arn, "Events": events}
        if "Filter" in props:
            notification["Filter"] = {"Key": {"FilterRules": props["Filter"]["S3Key"]["Rules"]}}
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
        config.pop("ResponseMetadata", None)
        config.setdefault("QueueConfigurations", []).append(notification)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        function_arn = self.template.resolve({"Fn::GetAtt": [function_id, "Arn"]})
        self._rules.append((queue, f"arn:aws:s3:::{bucket}", {"Arn": function_arn}))

    def _http_api(self, logical_id: str) -> None:
        """An HTTP API's routes on 127.0.0.1, invoking functions with payload format 2.0 events."""
        assert self.template
        template = self.template
        declared = template.resources.get(logical_id)
        props = template.properties(logical_id) if declared else {}
        if props.get("Auth", {}).get("Authorizers"):
            log.warning("%s: HTTP API authorizers are not enforced locally", logical_id)
        routes = []
        for function_id, resource in template.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                event_props = event.get("Properties", {})
                api = event_props.get("ApiId", {}).get("Ref", IMPLICIT_APIS["HttpApi"][0])
                if event["Type"] == "HttpApi" and api == logical_id:
                    # An event without Path and Method is the API's $default route: it takes every request.
                    method, path = event_props.get("Method", "ANY").upper(), event_props.get("Path", "/{proxy+}")
                    routes.append(Route(method, path, template.physical_ids[function_id], False))
        api_id = template.physical_ids[logical_id]
        stage = props.get("StageName", "$default")
        server = _Server(LocalApi(self.lambdas, stage, routes, self.api_key, self.access, api_id, http_api=True))
        self._servers.append(server)
        template.local_urls[f"https://{api_id}.execute-api.{REGION}.amazonaws.com"] = f"http://127.0.0.1:{server.port}"
        self.api_urls[logical_id] = f"http://127.0.0.1:{server.port}" + ("" if stage == "$default" else f"/{stage}")

    def _api(self, logical_id: str) -> None:
        assert self.template
        template = self.template
        # SAM's implicit API has the stage Prod and no settings of its own.
        props = template.properties(logical_id) if logical_id in template.resources else {"StageName": "Prod"}
        auth = props.get("Auth", {})
        authorizers = {name: Authorizer.from_sam(name, spec) for name, spec in auth.get("Authorizers", {}).items()}
        routes = []
        for function_id, resource in template.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                event_props = event.get("Properties", {})
                api = event_props.get("RestApiId", {}).get("Ref", IMPLICIT_APIS["Api"][0])
                if event["Type"] == "Api" and api == logical_id:
                    event_auth = event_props.get("Auth", {})
                    authorizer = event_auth.get("Authorizer", auth.get("DefaultAuthorizer", "NONE"))
                    if authorizer not in ("NONE", *authorizers):
                        raise UnsupportedTemplate(f"authorizer {authorizer} is not supported locally")
                    routes.append(
                        Route(
                            event_props["Method"].upper(),
                            event_props["Path"],
                            template.physical_ids[function_id],
                            bool(event_auth.get("ApiKeyRequired", auth.get("ApiKeyRequired"))),
                            authorizers.get(authorizer),
                        )
                    )
        stage = props["StageName"]
        server = _Server(
            LocalApi(self.lambdas, stage, routes, self.api_key, self.access, template.physical_ids[logical_id])
        )
        self._servers.append(server)
        remote = f"https://{template.physical_ids[logical_id]}.execute-api.{REGION}.amazonaws.com"
        template.local_urls[remote] = f"http://127.0.0.1:{server.port}"
        self.api_url = f"http://127.0.0.1:{server.port}/{stage}"
        self.api_urls[logical_id] = self.api_url

    def _state_machine(self, logical_id: str) -> None:
        assert self.template
        template = self.template
        props = template.properties(logical_id)
        definition = self._definition(props)
        for name, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + name + "}", str(value))
        if "arn:aws:states:::sagemaker:" in definition:
            CONTAINER_PYTHON.start()  # its imports overlap the deploy and the run's first states
        arn = template.physical_ids[logical_id]
        role = props.get("RoleArn") or self._execution_role(logical_id)
        if self.access.engine_role not in (None, role):
            raise UnsupportedTemplate("the local runtime runs state machines with different roles in separate stacks")
        self.access.assume(role, "states.amazonaws.com", "StepFunctions", arn)
        self.access.engine_role = role
        sfn = self.client("stepfunctions")
        machine_type = props.get("Type") or props.get("StateMachineType", "STANDARD")
        sfn.create_state_machine(name=arn.rsplit(":", 1)[1], definition=definition, roleArn=role, type=machine_type)
        self.state_machine_arn = arn
        self.state_machine_role = role
        for event_name, event in template.resources[logical_id].get("Properties", {}).get("Events", {}).items():
            event_props = template.resolve(event.get("Properties", {}))
            event_role = event_props.get("RoleArn") or self.role_arn(f"{logical_id}{event_name}Role")
            if event["Type"] == "EventBridgeRule":
                self._rule(
                    f"{self.stack_name}-{event_name}",
                    event_props["Pattern"],
                    [{"Arn": arn, "RoleArn": event_role, "InputTransformer": event_props.get("InputTransformer")}],
                )
            elif event["Type"] == "ScheduleV2":
                name = event_props.get("Name") or f"{self.stack_name}-{event_name}"
                self._create_schedule(name, event_props, {"Arn": arn, "RoleArn": event_role,
                                                          "Input": event_props.get("Input", "{}")})  # fmt: skip
            elif event["Type"] == "Schedule":
                enabled = event_props.get("State", "ENABLED") == "ENABLED" and event_props.get("Enabled", True)
                target = {"Arn": arn, "RoleArn": event_role, **({"Input": event_props["Input"]}
                                                                 if "Input" in event_props else {})}  # fmt: skip
                self._schedule_rule(
                    event_props.get("Name") or f"{self.stack_name}-{event_name}",
                    event_props["Schedule"],
                    [target],
                    enabled,
                )
            else:
                raise UnsupportedTemplate(f"state machine event type {event['Type']} is not supported locally")

    def _definition(self, props: dict[str, Any]) -> str:
        """The definition as written: inline (SAM's Definition, CloudFormation's DefinitionString) or packaged."""
        if "Definition" in props:
            return json.dumps(props["Definition"])
        if "DefinitionString" in props:
            return props["DefinitionString"]
        bucket, key = s3_location(props.get("DefinitionUri") or props["DefinitionS3Location"])
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def _events_rule(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.template.physical_ids[logical_id] if self.template else logical_id
        enabled = props.get("State", "ENABLED") == "ENABLED"
        if "ScheduleExpression" in props:
            self._schedule_rule(name, props["ScheduleExpression"], props.get("Targets", []), enabled)
        elif "EventPattern" in props:
            self._rule(name, props["EventPattern"], props.get("Targets", []))
        else:
            raise UnsupportedTemplate(f"{logical_id}: a rule needs an EventPattern or a ScheduleExpression")

    def _rule(self, name: str, pattern: dict[str, Any], targets: list[dict[str, Any]]) -> None:
        """The rule matches in moto's EventBridge; an SQS target hands matches to the delivery thread,
        which sends them to each target (with its role, where it has one), as EventBridge does."""
        events, sqs = self.client("events"), self.client("sqs")
        queue = sqs.create_queue(QueueName=f"{name}-delivery")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"]
        events.put_targets(Rule=name, Targets=[{"Id": "state-machine", "Arn": queue_arn}])
        for target in targets:
            self._rules.append((queue, rule_arn, target))

    def _schedule_rule(self, name: str, expression: str, targets: list[dict[str, Any]], enabled: bool) -> None:
        """A scheduled rule, in moto's EventBridge for the control plane; the schedule thread fires it."""
        state = "ENABLED" if enabled else "DISABLED"
        rule_arn = self.client("events").put_rule(Name=name, ScheduleExpression=expression, State=state)["RuleArn"]
        next_fire(expression, _now())  # refuses an expression AWS would refuse, at deploy time
        self._schedules.append(LocalSchedule(name, expression, targets, "events", rule_arn, enabled))

    def _create_schedule(self, name: str, props: dict[str, Any], target: dict[str, Any]) -> None:
        """A Scheduler schedule, in moto's Scheduler for the control plane; the schedule thread fires it."""
        enabled = props.get("State", "ENABLED") == "ENABLED"
        expression = props["ScheduleExpression"]
        arn = self.client("scheduler").create_schedule(
            Name=name,
            ScheduleExpression=expression,
            State="ENABLED" if enabled else "DISABLED",
            FlexibleTimeWindow=props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
            Target={k: v for k, v in target.items() if k in ("Arn", "RoleArn", "Input")},
        )["ScheduleArn"]
        next_fire(expression, _now())
        self._schedules.append(LocalSchedule(name, expression, [target], "scheduler", arn, enabled))

    def _scheduler_schedule(self, logical_id: str) -> None:
        assert self.template
        props = self._props(logical_id)
        self._create_schedule(props.get("Name") or self.template.physical_ids[logical_id], props, props["Target"])

    def _run_schedules(self) -> None:
        """Fires each enabled schedule on its expression, to within a second."""
        due = {id(s): next_fire(s.expression, _now()) for s in self._schedules if s.enabled}
        while not self._stopping.wait(1):
            for schedule in self._schedules:
                at = due.get(id(schedule))
                if at is not None and _now() >= at:
                    self._fire(schedule)
                    due[id(schedule)] = next_fire(schedule.expression, at)

    def _fire(self, schedule: LocalSchedule) -> None:
        for target in schedule.targets:
            if schedule.service == "scheduler":
                payload = target.get("Input", "{}")
            else:
                event = {
                    "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                    "source": "aws.events", "account": ACCOUNT, "time": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": REGION, "resources": [schedule.arn], "detail": {},
                }  # fmt: skip
                payload = target.get("Input") or transform_input(event, target.get("InputTransformer") or {})
            self._send_to_target(target, payload, schedule.service, schedule.arn)

    def _deliver_rule_events(self) -> None:
        sqs = self.client("sqs")
        while not self._stopping.is_set():
            try:
                for queue, rule_arn, target in self._rules:
                    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                    for message in messages:
                        body = json.loads(message["Body"])
                        event = moto_s3_event_as_aws_sends_it(body, self._multipart_seen[queue])
                        if event is not None:
                            transformer = target.get("InputTransformer") or {}
                            payload = target.get("Input") or transform_input(event, transformer)
                            self._send_to_target(target, payload, "events", rule_arn)
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                for queue, handle in self._pollers:
                    messages = sqs.receive_message(
                        QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
                    ).get("Messages", [])
                    if messages:
                        for receipt in handle(messages):
                            sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)
            except Exception:
                if self._stopping.is_set():
                    return
                raise
            self._stopping.wait(0.1)

    def _send_to_target(self, target: dict[str, Any], payload: str, service: str, source_arn: str) -> None:
        """What EventBridge (service "events") or Scheduler ("scheduler") does with a target: start the state
        machine with the target's role, invoke the function, send to the queue, publish to the topic. A failure
        drops the event, as they do without a dead-letter queue."""
        arn = target["Arn"]
        try:
            if ":states:" in arn:
                principal = self.access.assume(target["RoleArn"], f"{service}.amazonaws.com", service, source_arn)
                self.client("stepfunctions", principal).start_execution(stateMachineArn=arn, input=payload)
            elif ":lambda:" in arn:
                # Asynchronous, as EventBridge invokes: the caller does not wait for the handler.
                threading.Thread(target=self.lambdas.invoke, args=(arn, payload.encode()), daemon=True).start()
            elif ":sqs:" in arn:
                self.client("sqs").send_message(QueueUrl=_queue_url(arn), MessageBody=payload)
            elif ":sns:" in arn:
                self.client("sns").publish(TopicArn=arn, Message=payload)
            else:
                log.warning("%s: target %s is not supported locally; the event is dropped", source_arn, arn)
        except (AccessDenied, ClientError) as error:
            log.warning("%s could not deliver to %s: %s", source_arn, arn, error)

    # ---------------------------------------------------- definition mapping
    def rewrite_definition(self, name: str, definition: str) -> str:
        """Maps the Tasks moto's engine cannot run as AWS does to local providers, when registering."""
        document = json.loads(definition)
        self._map_resources(document)
        return json.dumps(document)

    def _map_resources(self, node: Any, language: str = "JSONPath") -> None:
        if isinstance(node, dict):
            language = query_language(node, language)
            resource = node.get("Resource")
            if node.get("Type") == "Task" and isinstance(resource, str):
                provider = provider_for(resource) or (resource if self.lambdas.is_provider(resource) else None)
                if is_activity(resource):
                    as_activity_task(node, jsonata=language == "JSONata")
                elif provider:
                    as_provider_task(node, provider, jsonata=language == "JSONata")
            for value in node.values():
                self._map_resources(value, language)
        elif isinstance(node, list):
            for value in node:
                self._map_resources(value, language)

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
                    name=f"{name}--{case}"[:80], definition=json.dumps(rewritten), roleArn=self.state_machine_role
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


@dataclass
class LocalSchedule:
    """A scheduled rule or Scheduler schedule, fired by the deployment's schedule thread."""

    name: str
    expression: str
    targets: list[dict[str, Any]]
    service: str  # "events" or "scheduler": who sends to the targets
    arn: str
    enabled: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _queue_url(queue_arn: str) -> str:
    """The URL of a queue, from its ARN (moto finds a queue by the URL's last part)."""
    _, _, _, region, account, name = queue_arn.split(":")
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def moto_s3_event_as_aws_sends_it(event: dict[str, Any], multipart_seen: set[tuple[str, ...]]) -> dict[str, Any] | None:
    """The event as S3 sends it to EventBridge (or in a bucket notification), or None for one S3 would not send.

    moto names the object's ETag ``eTag`` (S3: ``etag``) and gives no API name as the ``reason``. It also
    sends two events for one multipart upload (its internal PutObject, then CompleteMultipartUpload);
    S3 sends one. A multipart object's ETag ends in ``-<parts>``, which a PutObject's never does.
    """
    if event.get("Event") == "s3:TestEvent":
        return None  # S3 tests a queue it is told to notify; a function it notifies gets no such event
    for record in event.get("Records", []):  # a bucket notification's: S3 URL-encodes the key but keeps "/"
        obj = record.get("s3", {}).get("object", {})
        if "key" in obj:
            obj["key"] = obj["key"].replace("%2F", "/")
    obj = event.get("detail", {}).get("object", {})
    if event.get("source") != "aws.s3" or "key" not in obj:
        return event
    if "eTag" in obj and "etag" not in obj:
        obj["etag"] = obj.pop("eTag")
    if "-" in obj.get("etag", ""):
        upload = (event["detail"]["bucket"]["name"], obj["key"], obj["etag"], str(obj.get("version-id")))
        if upload in multipart_seen:
            return None
        multipart_seen.add(upload)
        event["detail"]["reason"] = "CompleteMultipartUpload"
    elif event.get("detail-type") == "Object Created":
        event["detail"]["reason"] = "PutObject"
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


def _table_encryption(declared: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's SSESpecification as DynamoDB's CreateTable takes it."""
    spec: dict[str, Any] = {"Enabled": bool(declared.get("SSEEnabled"))}
    if declared.get("SSEType"):
        spec["SSEType"] = declared["SSEType"]
    if declared.get("KMSMasterKeyId"):
        spec["KMSMasterKeyId"] = declared["KMSMasterKeyId"]
    return spec
