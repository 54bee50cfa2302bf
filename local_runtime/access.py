"""Who may do what on the local stack: every principal's calls are checked against its role's policies.

Each role of the template (the ones it declares and the ones the SAM transform generates for functions,
the state machine and its event sources) gets credentials of its own. Whoever calls with them, over
HTTP or inside a local provider, is checked here with ``local_runtime.iam`` before the call is served:
- the state machine role, for every task the engine runs (moto's engine signs as ``ak``);
- each function's role, for the SDK calls its handler makes;
- the SageMaker execution role, for the S3 reads and writes, image pulls and logs of jobs and endpoints;
- the Glue job role, for the script and the data its job reads and writes;
- the EventBridge and Scheduler roles, for ``states:StartExecution``.

Any other credentials (the developer's own, the deploy's) act as the account's administrator.
Every decision is recorded; ``report()`` lists each (principal, action, resource) and its outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from local_runtime.iam import Caller, Decision, Request, evaluate
from local_runtime.template import ACCOUNT, REGION

ENGINE_KEY = "ak"  # moto's ASL engine signs every call it makes with this access key
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Principal:
    role_arn: str
    session: str
    access_key: str

    @property
    def caller(self) -> Caller:
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{self.session}", role_arn=self.role_arn)

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": "local-secret",
            "aws_session_token": f"local-session-{self.access_key}",
        }


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


class AccessDenied(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


class AccessControl:
    def __init__(self) -> None:
        self.policies: dict[str, list[dict[str, Any]]] = {}
        self.trust_policies: dict[str, dict[str, Any]] = {}
        self.bucket_policies: dict[str, dict[str, Any]] = {}
        self.function_policies: dict[str, dict[str, Any]] = {}
        self.principals: dict[str, Principal] = {}
        self.engine_role: str | None = None
        # Customer-managed keys by the bucket or topic ARN they encrypt: using those needs the key too.
        self.encryption_keys: dict[str, str] = {}
        self.decisions: dict[tuple[str, str, str], bool] = {}
        self.unsupported: set[str] = set()
        # What evaluating costs, for the benchmark: decisions made and the seconds spent making them.
        self.evaluations = 0
        self.evaluation_seconds = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------- setup
    def add_role(self, role_arn: str, policies: list[dict[str, Any]], trust: dict[str, Any] | None = None) -> None:
        self.policies[role_arn] = policies
        if trust is not None:
            self.trust_policies[role_arn] = trust

    def assume(self, role_arn: str, service: str, session: str, source_arn: str | None = None) -> Principal:
        """A service takes a role, as STS allows it: only if the role's trust policy names the service and
        its conditions hold for this account and the resource acting (aws:SourceArn)."""
        started = time.perf_counter()
        trust = self.trust_policies.get(role_arn, {})
        # A trust policy's statements apply to the role itself; they name no Resource.
        statements = [{"Resource": role_arn, **s} for s in trust.get("Statement", [])]
        context = {"aws:SourceAccount": ACCOUNT, **({"aws:SourceArn": source_arn} if source_arn else {})}
        request = Request(Caller(service, service=service), "sts:AssumeRole", role_arn, context)
        decision = evaluate(request, [], {"Statement": statements})
        self._record(service, Check("sts:AssumeRole", role_arn), decision, started)
        if not decision.allowed:
            raise AccessDenied(decision)
        return self.principal(role_arn, session)

    def principal(self, role_arn: str, session: str) -> Principal:
        """The credentials a service hands to code running as ``role_arn``."""
        digest = hashlib.sha256(f"{role_arn}/{session}".encode()).hexdigest()[:16].upper()
        principal = Principal(role_arn, session, f"ASIA{digest}")
        self.principals[principal.access_key] = principal
        return principal

    def allow_function_invoke(self, function_name: str, statement: dict[str, Any]) -> None:
        policy = self.function_policies.setdefault(function_name, {"Version": "2012-10-17", "Statement": []})
        policy["Statement"].append(statement)

    # ---------------------------------------------------------- decisions
    def with_key_use(self, checks: list[Check]) -> list[Check]:
        """Adds the KMS calls S3 and SNS make with the caller's credentials on a customer-managed key."""
        used: list[Check] = []
        for check in checks:
            bucket = check.resource.split("/", 1)[0] if check.action.startswith("s3:") else check.resource
            key = self.encryption_keys.get(bucket)
            if key is None:
                continue
            if check.action in ("s3:GetObject", "s3:GetObjectVersion"):
                used.append(Check("kms:Decrypt", key))
            elif check.action == "s3:PutObject":
                used.append(Check("kms:GenerateDataKey", key))
            elif check.action == "sns:Publish":
                used += [Check("kms:GenerateDataKey", key), Check("kms:Decrypt", key)]
        return checks + used

    def check(self, principal: Principal, check: Check, resource_policy: dict[str, Any] | None = None) -> Decision:
        started = time.perf_counter()
        identity = self.policies.get(principal.role_arn, [])
        request = Request(principal.caller, check.action, check.resource, dict(check.context))
        decision = evaluate(request, identity, resource_policy or self._resource_policy(check))
        self._record(principal.role_arn, check, decision, started)
        return decision

    def require(self, principal: Principal, *checks: Check) -> None:
        for check in checks:
            decision = self.check(principal, check)
            if not decision.allowed:
                raise AccessDenied(decision)

    def check_service(self, service: str, source_arn: str, function_name: str, action: str, resource: str) -> Decision:
        """A service principal (API Gateway) calling a function: only its resource policy can allow it."""
        started = time.perf_counter()
        caller = Caller(service, service=service)
        request = Request(caller, action, resource, {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT})
        decision = evaluate(request, [], self.function_policies.get(function_name))
        self._record(service, Check(action, resource), decision, started)
        return decision

    def _record(self, who: str, check: Check, decision: Decision, started: float) -> None:
        with self._lock:
            self.evaluations += 1
            self.evaluation_seconds += time.perf_counter() - started
            key = (who, check.action, check.resource)
            self.decisions[key] = self.decisions.get(key, True) and decision.allowed
            self.unsupported.update(decision.unsupported)

    def _resource_policy(self, check: Check) -> dict[str, Any] | None:
        if check.action.startswith("s3:"):
            bucket = check.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
            return self.bucket_policies.get(bucket)
        return None

    def caller_of(self, environ: dict[str, Any]) -> Principal | None:
        """The principal behind a signed HTTP request, or None for the administrator."""
        key, _ = credential_of(environ)
        if key == ENGINE_KEY and self.engine_role:
            return self.principal(self.engine_role, "StepFunctions")
        return self.principals.get(key or "")

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"principal": who, "action": action, "resource": resource, "allowed": allowed}
                for (who, action, resource), allowed in sorted(self.decisions.items())
            ]

    def report_text(self) -> str:
        lines = [f"{'ALLOW' if r['allowed'] else 'DENY ':5}  {r['principal']}  {r['action']}  {r['resource']}"
                 for r in self.report()]  # fmt: skip
        lines += [f"UNSUPPORTED  {what} (never treated as allowing)" for what in sorted(self.unsupported)]
        return "\n".join(lines)


def credential_of(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """The access key and signing service of a SigV4 request (header or pre-signed query)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    match = CREDENTIAL.search(header)
    if match:
        return match.group(1), match.group(2)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    credential = unquote((query.get("X-Amz-Credential") or [""])[0])
    parts = credential.split("/")
    if len(parts) == 5:
        return parts[0], parts[3]
    return None, None


# ------------------------------------------------------------------ what a request asks for
def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def checks_for(service: str, environ: dict[str, Any], body: bytes) -> list[Check] | None:
    """The IAM actions and resources a request needs, or None when the local runtime cannot tell."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    request: dict[str, Any] = {}
    if target and body:
        try:
            request = json.loads(body)
        except ValueError:
            return None
    operation = target.rsplit(".", 1)[-1] if target else ""
    mapper = _MAPPERS.get(service)
    if mapper is None:
        return None
    return mapper(operation, request, environ, body)


def _dynamodb(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    tables: Iterable[str] = [request["TableName"]] if "TableName" in request else request.get("RequestItems", {})
    return [Check(f"dynamodb:{operation}", _arn("dynamodb", f"table/{t}")) for t in tables]


# A mock-config test case runs on a copy of its machine named "<machine>--<case>" (see
# LocalDeployment.test_case_machine), standing in for Step Functions Local's "<arn>#<case>".
TEST_CASE_COPY = re.compile(r"^(arn:aws:states:[^:]*:[^:]*:(?:execution|stateMachine):[^:#]+?)(?:--|#)[^:]+")


def _states(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    # An activity's calls (GetActivityTask, DescribeActivity) name it, so a worker's policy can be scoped to it.
    resource = request.get("stateMachineArn") or request.get("executionArn") or request.get("activityArn") or "*"
    # A test case runs on its machine's permissions.
    return [Check(f"states:{operation}", TEST_CASE_COPY.sub(r"\1", resource))]


_SAGEMAKER_NAMES = {
    "TrainingJobName": "training-job",
    "TransformJobName": "transform-job",
    "ProcessingJobName": "processing-job",
    "EndpointName": "endpoint",
    "EndpointConfigName": "endpoint-config",
    "ModelName": "model",
}


def sagemaker_checks(operation: str, request: dict[str, Any]) -> list[Check]:
    """SageMaker authorizes a call on the resource it names (Create*/Update* on every one it names)."""
    named = [(kind, request[field]) for field, kind in _SAGEMAKER_NAMES.items() if isinstance(request.get(field), str)]
    if operation.startswith("Create"):
        own = operation.removeprefix("Create")
        named = [n for n in named if n[0].replace("-", "").lower() == own.lower()] or named[:1]
    elif named:
        named = named[:1]
    checks = [Check(f"sagemaker:{operation}", _arn("sagemaker", f"{k}/{n.lower()}")) for k, n in named] or [
        Check(f"sagemaker:{operation}", "*")
    ]
    if operation in ("CreateTrainingJob", "CreateTransformJob", "CreateProcessingJob") and checks:
        resources = (
            request.get("ResourceConfig")
            or request.get("TransformResources")
            or request.get("ProcessingResources", {}).get("ClusterConfig")
            or {}
        )
        output = (
            request.get("OutputDataConfig")
            or request.get("TransformOutput")
            or request.get("ProcessingOutputConfig")
            or {}
        )
        keys = (
            ("sagemaker:VolumeKmsKey", resources.get("VolumeKmsKeyId")),
            ("sagemaker:OutputKmsKey", output.get("KmsKeyId")),
        )
        checks[0] = Check(checks[0].action, checks[0].resource, tuple((k, v) for k, v in keys if v))
    role = request.get("RoleArn") or request.get("ExecutionRoleArn")
    if role:
        checks.append(Check("iam:PassRole", role, (("iam:PassedToService", "sagemaker.amazonaws.com"),)))
    if request.get("Tags"):
        checks += [Check("sagemaker:AddTags", c.resource) for c in checks if c.action.startswith("sagemaker:")]
    return checks


def _sagemaker(operation: str, request: dict[str, Any], environ: dict[str, Any], _: bytes) -> list[Check]:
    match = re.match(r"^/endpoints/([^/]+)/invocations$", environ.get("PATH_INFO", ""))
    if match:
        return [Check("sagemaker:InvokeEndpoint", _arn("sagemaker", f"endpoint/{unquote(match.group(1)).lower()}"))]
    return sagemaker_checks(operation, request)


def _glue(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    name = request.get("JobName") or request.get("Name")
    return [Check(f"glue:{operation}", _arn("glue", f"job/{name}") if name else "*")]


def _logs(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    group = request.get("logGroupName")
    if not group:
        return [Check(f"logs:{operation}", "*")]
    stream = request.get("logStreamName")
    suffix = f":log-stream:{stream}" if stream and operation == "PutLogEvents" else ":*"
    return [Check(f"logs:{operation}", _arn("logs", f"log-group:{group}{suffix}"))]


def _events(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    name = request.get("Name") or request.get("Rule")
    return [Check(f"events:{operation}", _arn("events", f"rule/{name}") if name else "*")]


def _sqs(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    url = request.get("QueueUrl", "")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else request.get("QueueName", "*")
    return [Check(f"sqs:{operation}", _arn("sqs", name))]


def _ssm(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    names = [request["Name"]] if "Name" in request else request.get("Names", [])
    return [Check(f"ssm:{operation}", _arn("ssm", f"parameter/{n.lstrip('/')}")) for n in names] or [
        Check(f"ssm:{operation}", "*")
    ]


def _cognito_idp(operation: str, request: dict[str, Any], *_: Any) -> list[Check]:
    pool = request.get("UserPoolId")
    return [Check(f"cognito-idp:{operation}", _arn("cognito-idp", f"userpool/{pool}") if pool else "*")]


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}


def _sns(operation: str, request: dict[str, Any], environ: dict[str, Any], body: bytes) -> list[Check]:
    form = _form(body)
    action = form.get("Action", "")
    return [Check(f"sns:{action}", form.get("TopicArn") or form.get("TargetArn") or "*")]


def _cloudwatch(operation: str, request: dict[str, Any], environ: dict[str, Any], body: bytes) -> list[Check]:
    form = _form(body)
    if not form and request:
        form = {"Action": operation, "Namespace": request.get("Namespace", "")}
    action = form.get("Action", operation)
    context = (("cloudwatch:namespace", form["Namespace"]),) if "Namespace" in form else ()
    return [Check(f"cloudwatch:{action}", "*", context)]


def _lambda(operation: str, request: dict[str, Any], environ: dict[str, Any], _: bytes) -> list[Check] | None:
    match = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", environ.get("PATH_INFO", ""))
    if not match:
        return None
    name = unquote(match.group(1))
    arn = name if name.startswith("arn:") else _arn("lambda", f"function:{name}")
    return [Check("lambda:InvokeFunction", arn)]


_LIST_PARAMETERS = {
    "list-type",
    "prefix",
    "delimiter",
    "encoding-type",
    "continuation-token",
    "max-keys",
    "start-after",
}


def _s3(operation: str, request: dict[str, Any], environ: dict[str, Any], _: bytes) -> list[Check] | None:
    method = environ.get("REQUEST_METHOD", "GET")
    path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    bucket, _, key = path.partition("/")
    if not bucket:
        return None
    bucket_arn = f"arn:aws:s3:::{bucket}"
    context = (("aws:SecureTransport", "true"),)
    if key:
        object_arn = f"{bucket_arn}/{key}"
        if method in ("GET", "HEAD"):
            return [Check("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", object_arn, context)]
        if method == "DELETE":
            action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
            return [Check(action, object_arn, context)]
        if method in ("PUT", "POST"):
            checks = [Check("s3:PutObject", object_arn, context)]
            source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
            if source:
                checks.append(Check("s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/')}", context))
            return checks
        return None
    if method == "GET" and ("versions" in query):
        return [Check("s3:ListBucketVersions", bucket_arn, context)]
    if method in ("GET", "HEAD") and not set(query) - _LIST_PARAMETERS:
        prefix = (query.get("prefix") or [""])[0]
        return [Check("s3:ListBucket", bucket_arn, (*context, ("s3:prefix", prefix)))]
    if method == "POST" and "delete" in query:
        return [Check("s3:DeleteObject", f"{bucket_arn}/*", context)]
    return None


_MAPPERS: dict[str, Any] = {
    "dynamodb": _dynamodb,
    "states": _states,
    "sagemaker": _sagemaker,
    "glue": _glue,
    "logs": _logs,
    "events": _events,
    "sqs": _sqs,
    "sns": _sns,
    "monitoring": _cloudwatch,
    "lambda": _lambda,
    "s3": _s3,
    "ssm": _ssm,
    "cognito-idp": _cognito_idp,
}
