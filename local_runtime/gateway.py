"""The WSGI layer in front of moto's server: one endpoint that speaks the AWS API to everyone.

Requests go to moto unless they are one of the few things moto cannot do without AWS or Docker:
- Lambda ``Invoke`` runs the handler in-process (``LambdaRuntime``), honouring the invocation type;
- SageMaker API calls and ``InvokeEndpoint`` go to ``LocalSageMaker``, Glue's job runs to ``LocalGlue``;
- ``DescribeStacks`` answers for the local deployment;
- ``CreateStateMachine``/``UpdateStateMachine`` get the Tasks moto's engine cannot run as AWS does
  mapped to local providers, while ``DescribeStateMachine`` shows the definition as created;
- ``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat`` answer a token no task waits on as Step
  Functions does, and keep the failure's ``cause``, which moto's request parser drops;
- ``GetActivityTask``, which moto answers with an error, hands out the tasks activity states queued;
- executions of a mock-config test case, which run on a copy of their machine, show as the original
  machine's executions (see ``_as_test_case``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from html import escape
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from local_runtime.access import AccessControl, Principal, checks_for, credential_of
from local_runtime.activities import Activities
from local_runtime.cloudformation import StackDescription, describe_stacks
from local_runtime.errors import ServiceError
from local_runtime.glue import LocalGlue
from local_runtime.iam import Decision
from local_runtime.lambdas import NO_ANSWER, LambdaRuntime
from local_runtime.mocking import MISSING_RESPONSE_ERROR, MockConfig, TestCaseArns, execution_arn, mocked_task_events
from local_runtime.sagemaker import LocalSageMaker
from local_runtime.template import ACCOUNT, REGION, SKIPPED_MARKER

LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
ENDPOINT_INVOKE = re.compile(r"^/endpoints/([^/]+)/invocations$")

StartResponse = Callable[..., Any]
# Step Functions' messages for a task token that cannot take an outcome.
TASK_ERRORS = {
    "TaskTimedOut": "Task Timed Out: 'Provided task does not exist anymore'",
    "TaskDoesNotExist": "Task does not exist anymore",
    "InvalidToken": "Invalid Token: 'Invalid token'",
}
MAX_EXECUTION_INPUT = 256 * 1024
log = logging.getLogger(__name__)


class _Recording:
    """start_response that also keeps the last successful response per operation the gateway answers itself,
    so tests can check each against botocore's output shape."""

    def __init__(self, start_response: StartResponse, operation: tuple[str, str], served: dict[Any, Any]) -> None:
        self.start_response = start_response
        self.operation = operation
        self.served = served

    def __call__(self, *args: Any) -> Any:
        return self.start_response(*args)

    def record(self, status: int, headers: dict[str, str], body: bytes) -> None:
        if 200 <= status < 300:
            self.served[self.operation] = (status, headers, body)


def _operation_of(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """(botocore service name, operation) of a request."""
    path = environ.get("PATH_INFO", "")
    if LAMBDA_INVOKE.match(path):
        return "lambda", "Invoke"
    if ENDPOINT_INVOKE.match(path):
        return "sagemaker-runtime", "InvokeEndpoint"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefixes = {"AWSStepFunctions": "stepfunctions", "SageMaker": "sagemaker", "AWSGlue": "glue"}
    if "." in target and target.split(".", 1)[0] in prefixes:
        return prefixes[target.split(".", 1)[0]], target.split(".", 1)[1]
    if credential_of(environ)[1] == "cloudformation":
        return "cloudformation", parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return "", path


def _stepfunctions_backend() -> Any:
    """moto's Step Functions backend, for what its HTTP API cannot say (task tokens, machine dates)."""
    from moto.stepfunctions.responses import get_backend

    return get_backend(ACCOUNT, REGION)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _refused_input(text: str) -> dict[str, str] | None:
    """StartExecution's checks of the input: its size, and that it is JSON (Python's reader also takes
    NaN and Infinity, which Step Functions refuses)."""
    if len(text.encode()) > MAX_EXECUTION_INPUT:
        return {
            "__type": "ValidationException",
            "message": "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_EXECUTION_INPUT}",
        }
    try:
        json.loads(text, parse_constant=_not_json)
    except ValueError as error:
        return {"__type": "InvalidExecutionInput", "message": f"Invalid State Machine Execution Input: {error}"}
    return None


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), **headers, "Content-Length": str(len(body))}
    start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
    if isinstance(start_response, _Recording):
        start_response.record(status, headers, body)
    return [body]


class Gateway:
    def __init__(
        self,
        moto_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        lambdas: LambdaRuntime,
        sagemaker: LocalSageMaker,
        glue: LocalGlue,
        rewrite_definition: Callable[[str, str], str],
        test_case_machine: Callable[[str], str],
        access: AccessControl,
        stack: Callable[[], StackDescription],
        mocks: MockConfig | None = None,
        activities: Activities | None = None,
        refusal_for_skipped: Callable[[str, bool], str | None] = lambda text, by_role: None,
    ) -> None:
        # Why a request naming a resource the deploy skipped is refused (the request's text, made by a role?).
        self.refusal_for_skipped = refusal_for_skipped
        self.access = access
        self.mocks = mocks
        self.test_cases = TestCaseArns()
        self.activities = activities or Activities()
        # Definitions as their callers created them, by machine name: the .sync mapping stays invisible.
        self.definitions: dict[str, str] = {}
        self.moto_app = moto_app
        self.lambdas = lambdas
        self.sagemaker = sagemaker
        self.glue = glue
        self.rewrite_definition = rewrite_definition
        self.test_case_machine = test_case_machine
        self.stack = stack
        # (service, operation) -> (status, headers, body) of the last success a local provider answered.
        self.served: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        operation = _operation_of(environ, body)
        start_response = _Recording(start_response, operation, self.served)
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "GET")
        caller = self.access.caller_of(environ)
        request_text = f"{path}?{environ.get('QUERY_STRING', '')}"
        if SKIPPED_MARKER in request_text or SKIPPED_MARKER.encode() in body:
            refusal = self.refusal_for_skipped(f"{request_text} {body.decode(errors='replace')}", caller is not None)
            if refusal is not None:
                return self._access_denied(environ, Decision(False, refusal), start_response)
        if caller is not None:
            denied = self._authorize(caller, environ, body)
            if denied is not None:
                return self._access_denied(environ, denied, start_response)

        if method == "POST" and (match := LAMBDA_INVOKE.match(path)):
            return self._invoke_lambda(unquote(match.group(1)), body, environ, start_response, caller)
        if method == "POST" and (match := ENDPOINT_INVOKE.match(path)):
            return self._invoke_endpoint(unquote(match.group(1)), body, environ, start_response)
        if operation == ("cloudformation", "DescribeStacks"):
            requested = parse_qs(body.decode(errors="replace")).get("StackName", [""])[0]
            status, xml = describe_stacks(self.stack(), requested)
            return _respond(start_response, status, xml, {"Content-Type": "text/xml"})
        if target.startswith("SageMaker."):
            return self._local_api(self.sagemaker.handle, target.split(".", 1)[1], body, start_response)
        if target in ("AWSGlue.GetJobRun", "AWSGlue.GetJobRuns"):
            return self._local_api(self.glue.handle, target.split(".", 1)[1], body, start_response)
        if target in ("AWSStepFunctions.CreateStateMachine", "AWSStepFunctions.UpdateStateMachine"):
            request = json.loads(body)
            if "definition" in request:
                name = request.get("name") or request.get("stateMachineArn", "").rsplit(":", 1)[-1]
                self.definitions[name] = request["definition"]
                request["definition"] = self.rewrite_definition(name, request["definition"])
                self._replace_body(environ, request)
        if target in ("AWSStepFunctions.DescribeStateMachine", "AWSStepFunctions.DescribeStateMachineForExecution"):
            request = json.loads(body or b"{}")
            if copy_arn := self.test_cases.copy_execution(request.get("executionArn", "")):
                self._replace_body(environ, {**request, "executionArn": copy_arn})
            return self._as_created(environ, start_response)
        if target == "AWSStepFunctions.StartExecution":
            request = json.loads(body)
            refusal = _refused_input(request.get("input", "{}"))
            if refusal:
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                return _respond(start_response, 400, json.dumps(refusal).encode(), headers)
            # Step Functions names unnamed executions with a UUID; moto would name them "None".
            request["name"] = request.get("name") or str(uuid.uuid4())
            if "#" in request.get("stateMachineArn", ""):
                # Step Functions Local's way to pick a test case of the mock config: "<arn>#<case>".
                original = request["stateMachineArn"].split("#", 1)[0]
                try:
                    request["stateMachineArn"] = self.test_case_machine(request["stateMachineArn"])
                except ValueError as error:
                    payload = {"__type": "ValidationException", "message": str(error)}
                    headers = {"Content-Type": "application/x-amz-json-1.0"}
                    return _respond(start_response, 400, json.dumps(payload).encode(), headers)
                self.test_cases.add_machine(request["stateMachineArn"], original)
                if self.test_cases.copy_execution(execution_arn(original, request["name"])):
                    payload = {"__type": "ExecutionAlreadyExists", "message": f"Execution Already Exists: "
                               f"'{execution_arn(original, request['name'])}'"}  # fmt: skip
                    headers = {"Content-Type": "application/x-amz-json-1.0"}
                    return _respond(start_response, 400, json.dumps(payload).encode(), headers)
            self._replace_body(environ, request)
        if target in ("AWSStepFunctions.SendTaskSuccess", "AWSStepFunctions.SendTaskFailure",
                      "AWSStepFunctions.SendTaskHeartbeat"):  # fmt: skip
            return self._send_task_outcome(target, json.loads(body or b"{}"), start_response)
        if target == "AWSStepFunctions.GetActivityTask":
            return self._get_activity_task(json.loads(body or b"{}"), start_response)
        if target.startswith("AWSStepFunctions.") and self.test_cases.machines:
            return self._as_test_case(environ, target.split(".", 1)[1], start_response)
        return self.moto_app(environ, start_response)

    def _call_moto(self, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured.update(status=status, headers=headers)

        body = b"".join(self.moto_app(environ, capture))
        headers = {k: v for k, v in captured["headers"] if k.lower() != "content-length"}
        return int(captured["status"].split()[0]), headers, body

    def _as_test_case(self, environ: dict[str, Any], operation: str, start_response: StartResponse) -> list[bytes]:
        """A Step Functions call as Step Functions Local answers it: test-case executions (which run on a copy
        of their machine) carry the original machine's execution ARN in requests and responses."""
        cases = self.test_cases
        request = json.loads(environ["wsgi.input"].getvalue() or b"{}")
        copy_arn = cases.copy_execution(request.get("executionArn", ""))
        if copy_arn:
            request["executionArn"] = copy_arn
            self._replace_body(environ, request)
        copies = cases.copies_of(request.get("stateMachineArn", ""))
        if operation == "ListExecutions" and copies and "nextToken" not in request:
            return self._list_with_test_cases(environ, request, copies, start_response)
        status, headers, body = self._call_moto(environ)
        if status == 200 and copy_arn and operation in ("GetExecutionHistory", "DescribeExecution"):
            answer = json.loads(body)
            if operation == "GetExecutionHistory":
                answer["events"] = mocked_task_events(answer["events"])
            cause = self.mocks.missing.get(copy_arn) if self.mocks else None
            failure = answer if operation == "DescribeExecution" else next(
                (e["executionFailedEventDetails"] for e in answer["events"] if e["type"] == "ExecutionFailed"), {}
            )  # fmt: skip
            if cause and failure.get("error") == MISSING_RESPONSE_ERROR:
                failure["cause"] = cause  # moto's engine words this failure as an internal error
            body = json.dumps(answer).encode()
        if status == 200 and operation == "StartExecution":
            cases.add_execution(json.loads(body)["executionArn"])  # the copy's, translated below
        if status == 200 and operation == "ListStateMachines":
            answer = json.loads(body)
            answer["stateMachines"] = [m for m in answer["stateMachines"] if m["stateMachineArn"] not in cases.machines]
            body = json.dumps(answer).encode()
        return _respond(start_response, status, cases.as_original(body), headers)

    def _list_with_test_cases(
        self, environ: dict[str, Any], request: dict[str, Any], copies: list[str], start_response: StartResponse
    ) -> list[bytes]:
        """ListExecutions of a machine, with its test cases' executions, newest first."""
        executions: list[dict[str, Any]] = []
        for machine in [request["stateMachineArn"], *copies]:
            self._replace_body(environ, {**request, "stateMachineArn": machine})
            status, headers, body = self._call_moto(environ)
            if status != 200:
                return _respond(start_response, status, body, headers)
            executions += json.loads(body)["executions"]
        executions.sort(key=lambda e: e["startDate"], reverse=True)
        body = json.dumps({"executions": executions[: request.get("maxResults") or None]}).encode()
        return _respond(start_response, 200, self.test_cases.as_original(body), headers)

    def _as_created(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """moto's answer, with the definition the caller registered rather than the locally mapped one."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured.update(status=status, headers=headers)

        body = b"".join(self.moto_app(environ, capture))
        status = int(captured["status"].split()[0])
        headers = {k: v for k, v in captured["headers"] if k.lower() != "content-length"}
        if status == 200:
            described = json.loads(body)
            # A test case's copy shows as its original machine, with the original's definition.
            original = self.test_cases.machines.get(described.get("stateMachineArn", ""))
            name = (original or described.get("stateMachineArn", "")).rsplit(":", 1)[-1]
            if name in self.definitions:
                described["definition"] = self.definitions[name]
            if environ.get("HTTP_X_AMZ_TARGET", "").endswith("ForExecution"):
                # moto answers with DescribeStateMachine's members; this operation has updateDate instead.
                machine = _stepfunctions_backend().describe_state_machine(described["stateMachineArn"])
                kept = ("stateMachineArn", "name", "definition", "roleArn", "loggingConfiguration",
                        "tracingConfiguration", "label", "revisionId", "encryptionConfiguration")  # fmt: skip
                described = {k: v for k, v in described.items() if k in kept}
                described["updateDate"] = machine.update_date.timestamp()
            body = self.test_cases.as_original(json.dumps(described).encode())
        return _respond(start_response, status, body, headers)

    @staticmethod
    def _replace_body(environ: dict[str, Any], request: dict[str, Any]) -> None:
        body = json.dumps(request).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))

    def _authorize(self, caller: Principal, environ: dict[str, Any], body: bytes) -> Decision | None:
        """The first denial among the permissions the request needs, or None when all are allowed."""
        path = environ.get("PATH_INFO", "")
        match = LAMBDA_INVOKE.match(path)
        if match and self.lambdas.is_provider(unquote(match.group(1))):
            return None  # a stand-in for a .sync or mocked integration checks the real permissions itself
        _, service = credential_of(environ)
        checks = checks_for(service or "", environ, body)
        if checks is None:
            what = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('HTTP_X_AMZ_TARGET', '')}".strip()
            return Decision(False, f"User: {caller.caller.arn} made a request the local runtime cannot map to an "
                                   f"IAM action ({service}: {what}); it is denied rather than guessed")  # fmt: skip
        for check in self.access.with_key_use(checks):
            decision = self.access.check(caller, check)
            if not decision.allowed:
                return decision
        return None

    @staticmethod
    def _access_denied(environ: dict[str, Any], decision: Decision, start_response: StartResponse) -> list[bytes]:
        """The denial in the protocol of the service called, with AWS's status and error code."""
        _, service = credential_of(environ)
        message = decision.message
        if service == "s3":
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                    f"<Message>{escape(message)}</Message></Error>")  # fmt: skip
            return _respond(start_response, 403, body.encode(), {"Content-Type": "application/xml"})
        if service in ("sns", "monitoring", "sts", "iam"):
            code = "AuthorizationError" if service == "sns" else "AccessDenied"
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}"
                    f"</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")  # fmt: skip
            return _respond(start_response, 403, body.encode(), {"Content-Type": "text/xml"})
        if service == "lambda" or LAMBDA_INVOKE.match(environ.get("PATH_INFO", "")):
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}
            return _respond(start_response, 403, json.dumps({"Type": "User", "Message": message}).encode(), headers)
        if ENDPOINT_INVOKE.match(environ.get("PATH_INFO", "")):
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}
            return _respond(start_response, 403, json.dumps({"message": message}).encode(), headers)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        payload = {"__type": "AccessDeniedException", "message": message}
        return _respond(start_response, 400, json.dumps(payload).encode(), headers)

    def _invoke_lambda(
        self,
        function_name: str,
        body: bytes,
        environ: dict[str, Any],
        start_response: StartResponse,
        caller: Principal | None = None,
    ) -> list[bytes]:
        """Lambda's Invoke, honouring the invocation type (RequestResponse, Event, DryRun) and log type."""
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
        if not self.lambdas.exists(function_name):
            error = {
                "Type": "User",
                "message": f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
            }
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}
            return _respond(start_response, 404, json.dumps(error).encode(), headers)
        if invocation_type == "DryRun":
            return _respond(start_response, 204, b"", {})
        if self.lambdas.is_provider(function_name):
            # A callback Task (see stack.as_provider_task): the outcome goes to its token, not into this reply.
            threading.Thread(target=self._run_provider_task, args=(function_name, body, caller), daemon=True).start()
            return _respond(start_response, 200, b"{}", {"Content-Type": "application/json"})
        if invocation_type == "Event":
            threading.Thread(target=self.lambdas.invoke, args=(function_name, body, caller), daemon=True).start()
            return _respond(start_response, 202, b"", {})
        result = self.lambdas.invoke(function_name, body, caller)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.log.encode()[-4096:]).decode()
        return _respond(start_response, 200, json.dumps(result.payload, default=str).encode(), headers)

    def _run_provider_task(self, function_name: str, body: bytes, caller: Principal | None) -> None:
        """Runs a local provider for a callback Task and answers its token with the outcome."""
        backend = _stepfunctions_backend()
        envelope = json.loads(body)
        token = envelope["taskToken"]
        try:
            request = envelope.get("request", envelope)
            result = self.lambdas.invoke(function_name, json.dumps(request).encode(), caller)
            if result.payload is NO_ANSWER:
                return
            if result.function_error:
                error, cause = result.payload["errorType"], result.payload["errorMessage"]
                deliver = partial(backend.send_task_failure, token, error, cause)
            else:
                deliver = partial(backend.send_task_success, token, json.dumps(result.payload, default=str))
        except Exception as bug:  # a provider bug must still end the task, not leave it waiting forever
            deliver = partial(backend.send_task_failure, token, type(bug).__name__, str(bug))
        try:
            deliver()
        except Exception as error:
            # The execution stopped waiting (stopped, timed out, or the stack closed): nobody to tell.
            log.info("%s finished after its task ended: %s", function_name, error)

    @staticmethod
    def _local_api(
        handle: Callable[[str, dict[str, Any]], dict[str, Any]],
        operation: str,
        body: bytes,
        start_response: StartResponse,
    ) -> list[bytes]:
        """A JSON-protocol API call a local provider answers (SageMaker, Glue job runs)."""
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        try:
            result = handle(operation, json.loads(body or b"{}"))
        except ServiceError as error:
            payload = {"__type": error.code, "message": str(error)}
            return _respond(start_response, error.status, json.dumps(payload).encode(), headers)
        return _respond(start_response, 200, json.dumps(result, default=str).encode(), headers)

    def _invoke_endpoint(
        self, name: str, body: bytes, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes]:
        content_type = environ.get("CONTENT_TYPE") or "text/csv"
        accept = environ.get("HTTP_ACCEPT") or content_type
        try:
            status, returned_type, reply = self.sagemaker.invoke_endpoint(name, body, content_type, accept)
        except ServiceError as error:
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
            return _respond(start_response, error.status, json.dumps({"message": str(error)}).encode(), headers)
        if status != 200:
            message = reply.decode(errors="replace")
            error = {
                "message": f'Received server error ({status}) from primary with message "{message}".',
                "OriginalStatusCode": status,
                "OriginalMessage": message,
            }
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}
            return _respond(start_response, 424, json.dumps(error).encode(), headers)
        headers = {"Content-Type": returned_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        return _respond(start_response, 200, reply, headers)

    def _get_activity_task(self, request: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """GetActivityTask, which moto cannot answer: a task an activity state queued, after a long poll."""
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        activity_arn = request.get("activityArn", "")
        try:
            _stepfunctions_backend().describe_activity(activity_arn)
        except Exception as error:
            code = getattr(error, "TYPE", None) or "ActivityDoesNotExist"
            payload = {"__type": code, "message": str(getattr(error, "message", "") or error)}
            return _respond(start_response, 400, json.dumps(payload).encode(), headers)
        task = self.activities.take(activity_arn)
        # With no task before the poll ends, Step Functions answers with a null token.
        return _respond(start_response, 200, json.dumps(task or {}).encode(), headers)

    @staticmethod
    def _send_task_outcome(target: str, request: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Delivers a task outcome (with the failure's cause, which moto's parser drops), answering a token
        that no longer waits with Step Functions' error, so a late decision is never reported as taken."""
        backend = _stepfunctions_backend()
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        token = request.get("taskToken", "")

        def refuse(code: str, message: str) -> list[bytes]:
            payload = {"__type": code, "message": message}
            return _respond(start_response, 400, json.dumps(payload).encode(), headers)

        refusal = token_refusal(backend, token)
        if refusal:
            return refuse(refusal, TASK_ERRORS[refusal])
        try:
            if target.endswith("SendTaskHeartbeat"):
                # moto knows a token for heartbeats only when its state sets HeartbeatSeconds; Step Functions
                # accepts a heartbeat for any waiting task (token_refusal said this one waits).
                with contextlib.suppress(Exception):
                    backend.send_task_heartbeat(token)
            elif target.endswith("SendTaskSuccess"):
                backend.send_task_success(token, request.get("output", "{}"))
            else:
                backend.send_task_failure(token, error=request.get("error"), cause=request.get("cause"))
        except Exception as error:
            # moto's own errors carry the name in TYPE (their ``code`` is the HTTP status).
            names = (getattr(error, "TYPE", None), getattr(error, "code", None), type(error).__name__)
            code = next(name for name in names if isinstance(name, str))
            return refuse(code, TASK_ERRORS.get(code, str(error)))
        return _respond(start_response, 200, b"{}", headers)


TASK_CLOSED = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")


def token_refusal(backend: Any, token: str) -> str | None:
    """Step Functions' error for a token no task waits on, or None while its task waits.

    moto accepts a SendTaskFailure for a task that already ended, even in a finished execution. On AWS the
    token of a task that ended (answered, timed out, or its execution over) gets TaskTimedOut; one that no
    task was ever given is an InvalidToken. The execution histories say which: the task received the token
    in its parameters, and a later closing event of the same resource ends it.
    """
    for machine in list(backend.state_machines):
        for execution in list(machine.executions):
            events = backend.get_execution_history(execution.execution_arn)["events"]
            for index, event in enumerate(events):
                details = event.get("taskScheduledEventDetails")
                if event["type"] != "TaskScheduled" or token not in (details or {}).get("parameters", ""):
                    continue
                closed = any(
                    later["type"] in TASK_CLOSED
                    and next(v for k, v in later.items() if k.endswith("EventDetails")).get("resource")
                    == details.get("resource")
                    for later in events[index + 1 :]
                )
                return "TaskTimedOut" if closed or execution.status != "RUNNING" else None
    return "InvalidToken"
