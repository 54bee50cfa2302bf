"""The WSGI layer in front of moto's server: one endpoint that speaks the AWS API to everyone.

Requests go to moto unless they are one of the few things moto cannot do without AWS or Docker:
- Lambda ``Invoke`` runs the handler in-process (``LambdaRuntime``);
- SageMaker API calls and ``InvokeEndpoint`` go to ``LocalSageMaker``;
- ``CreateStateMachine``/``UpdateStateMachine`` get their ``.sync`` Resources mapped to local
  providers (the definition file on disk is never touched);
- ``SendTaskFailure`` keeps its ``cause``, which moto's request parser drops.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from html import escape
from typing import Any
from urllib.parse import unquote

from local_runtime.access import AccessControl, Principal, checks_for, credential_of
from local_runtime.iam import Decision
from local_runtime.lambdas import LambdaRuntime, UnknownFunction
from local_runtime.sagemaker import LocalSageMaker, SageMakerError
from local_runtime.template import ACCOUNT, REGION

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


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 424: "Failed Dependency",
               500: "Internal Server Error"}  # fmt: skip
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), **headers, "Content-Length": str(len(body))}
    start_response(f"{status} {reasons.get(status, 'Error')}", list(headers.items()))
    return [body]


class Gateway:
    def __init__(
        self,
        moto_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        lambdas: LambdaRuntime,
        sagemaker: LocalSageMaker,
        rewrite_definition: Callable[[str, str], str],
        test_case_machine: Callable[[str], str],
        access: AccessControl,
    ) -> None:
        self.access = access
        # Definitions as their callers created them, by machine name: the .sync mapping stays invisible.
        self.definitions: dict[str, str] = {}
        self.moto_app = moto_app
        self.lambdas = lambdas
        self.sagemaker = sagemaker
        self.rewrite_definition = rewrite_definition
        self.test_case_machine = test_case_machine

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "GET")
        caller = self.access.caller_of(environ)
        if caller is not None:
            denied = self._authorize(caller, environ, body)
            if denied is not None:
                return self._access_denied(environ, denied, start_response)

        if method == "POST" and (match := LAMBDA_INVOKE.match(path)):
            return self._invoke_lambda(unquote(match.group(1)), body, start_response, caller)
        if method == "POST" and (match := ENDPOINT_INVOKE.match(path)):
            return self._invoke_endpoint(unquote(match.group(1)), body, environ, start_response)
        if target.startswith("SageMaker."):
            return self._sagemaker(target.split(".", 1)[1], body, start_response)
        if target in ("AWSStepFunctions.CreateStateMachine", "AWSStepFunctions.UpdateStateMachine"):
            request = json.loads(body)
            if "definition" in request:
                name = request.get("name") or request.get("stateMachineArn", "").rsplit(":", 1)[-1]
                self.definitions[name] = request["definition"]
                request["definition"] = self.rewrite_definition(name, request["definition"])
                self._replace_body(environ, request)
        if target in ("AWSStepFunctions.DescribeStateMachine", "AWSStepFunctions.DescribeStateMachineForExecution"):
            return self._as_created(environ, start_response)
        if target == "AWSStepFunctions.StartExecution":
            request = json.loads(body)
            if len(request.get("input", "").encode()) > MAX_EXECUTION_INPUT:
                payload = {
                    "__type": "ValidationException",
                    "message": "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {MAX_EXECUTION_INPUT}",
                }
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                return _respond(start_response, 400, json.dumps(payload).encode(), headers)
            # Step Functions names unnamed executions with a UUID; moto would name them "None".
            request["name"] = request.get("name") or str(uuid.uuid4())
            if "#" in request.get("stateMachineArn", ""):
                # Step Functions Local's way to pick a test case of the mock config: "<arn>#<case>".
                try:
                    request["stateMachineArn"] = self.test_case_machine(request["stateMachineArn"])
                except ValueError as error:
                    payload = {"__type": "ValidationException", "message": str(error)}
                    headers = {"Content-Type": "application/x-amz-json-1.0"}
                    return _respond(start_response, 400, json.dumps(payload).encode(), headers)
            self._replace_body(environ, request)
        if target in ("AWSStepFunctions.SendTaskSuccess", "AWSStepFunctions.SendTaskFailure"):
            return self._send_task_outcome(target, json.loads(body or b"{}"), start_response)
        return self.moto_app(environ, start_response)

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
            name = described.get("name") or described.get("stateMachineArn", "").rsplit(":", 1)[-1]
            if name in self.definitions:
                described["definition"] = self.definitions[name]
            body = json.dumps(described).encode()
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
        for check in checks:
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
        self, function_name: str, body: bytes, start_response: StartResponse, caller: Principal | None = None
    ) -> list[bytes]:
        try:
            result = self.lambdas.invoke(function_name, body, caller)
        except UnknownFunction:
            error = {
                "Type": "User",
                "message": f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
            }
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}
            return _respond(start_response, 404, json.dumps(error).encode(), headers)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        return _respond(start_response, 200, json.dumps(result.payload, default=str).encode(), headers)

    def _sagemaker(self, operation: str, body: bytes, start_response: StartResponse) -> list[bytes]:
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        try:
            result = self.sagemaker.handle(operation, json.loads(body or b"{}"))
        except SageMakerError as error:
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
        except SageMakerError as error:
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

    @staticmethod
    def _send_task_outcome(target: str, request: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Delivers a task outcome (with the failure's cause, which moto's parser drops), answering a token
        that no longer waits with Step Functions' error, so a late decision is never reported as taken."""
        from moto.stepfunctions.responses import get_backend

        backend = get_backend(ACCOUNT, REGION)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        try:
            if target.endswith("SendTaskSuccess"):
                backend.send_task_success(request.get("taskToken", ""), request.get("output", "{}"))
            else:
                backend.send_task_failure(
                    request.get("taskToken", ""), error=request.get("error"), cause=request.get("cause")
                )
        except Exception as error:
            # moto's own errors carry the name in TYPE (their ``code`` is the HTTP status).
            names = (getattr(error, "TYPE", None), getattr(error, "code", None), type(error).__name__)
            code = next(name for name in names if isinstance(name, str))
            payload = {"__type": code, "message": TASK_ERRORS.get(code, str(error))}
            return _respond(start_response, 400, json.dumps(payload).encode(), headers)
        return _respond(start_response, 200, b"{}", headers)
