"""API Gateway on 127.0.0.1: the template's Api routes, each invoking its handler with a REST proxy event,
after the route's Lambda authorizer (TOKEN or REQUEST) has allowed the call; and HttpApi routes, with
payload format 2.0 events."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from local_runtime.access import AccessControl
from local_runtime.iam import Caller, evaluate
from local_runtime.iam import Request as IamRequest
from local_runtime.lambdas import LambdaRuntime
from local_runtime.template import ACCOUNT, REGION, UnsupportedTemplate


def _event_body(request: Request) -> tuple[str, bool]:
    """The body as a proxy event carries it: text, or base64 (isBase64Encoded) when it is not UTF-8."""
    raw = request.get_data()
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer as SAM declares it under the API's Auth.Authorizers."""

    name: str
    function: str
    payload_type: str  # TOKEN or REQUEST
    identity_headers: tuple[str, ...]  # a request without one of them is refused before the function runs

    @classmethod
    def from_sam(cls, name: str, declared: dict[str, Any]) -> Authorizer:
        if "FunctionArn" not in declared:
            raise UnsupportedTemplate(f"authorizer {name}: only Lambda authorizers are supported locally")
        payload_type = declared.get("FunctionPayloadType", "TOKEN")
        identity = declared.get("Identity", {})
        headers = (
            identity.get("Headers", []) if payload_type == "REQUEST" else [identity.get("Header", "authorization")]
        )
        return cls(name, declared["FunctionArn"].rsplit(":", 1)[1], payload_type, tuple(headers))

    @property
    def authorizer_id(self) -> str:
        return self.name.lower()[:10]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as declared, e.g. /approvals/{id}
    function: str
    api_key_required: bool
    authorizer: Authorizer | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        # Matched with fullmatch: "$" would accept a trailing newline in a path parameter. {name+} is greedy.
        greedy = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", greedy))

    def accepts(self, method: str) -> bool:
        return self.method in (method, "ANY")


class LocalApi:
    """A WSGI app serving one stage of one REST API."""

    def __init__(
        self,
        lambdas: LambdaRuntime,
        stage: str,
        routes: list[Route],
        api_key: str,
        access: AccessControl,
        api_id: str,
        http_api: bool = False,
    ) -> None:
        # An HTTP API sends payload format 2.0 events, and its $default stage has no path prefix.
        self.http_api = http_api
        self.access = access
        self.api_id = api_id
        self.lambdas = lambdas
        self.stage = stage
        self.routes = routes
        self.api_key = api_key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        prefix = "" if self.http_api and self.stage == "$default" else f"/{self.stage}"
        if not request.path.startswith(prefix + "/"):
            return self._error(403, "Missing Authentication Token")
        path = request.path[len(prefix) :]
        matching = [(r, m) for r in self.routes if (m := r.pattern.fullmatch(path))]
        if not matching:
            return self._error(403, "Missing Authentication Token")
        chosen = next(((r, m) for r, m in matching if r.method == request.method), None)
        chosen = chosen or next(((r, m) for r, m in matching if r.accepts(request.method)), None)
        if chosen is None:
            return self._error(403, "Missing Authentication Token")
        route, match = chosen
        if route.api_key_required and request.headers.get("x-api-key") != self.api_key:
            return self._error(403, "Forbidden")
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/{self.stage}/{request.method}{path}"
        if self.http_api:
            return self._dispatch_http_api(request, route, path, match.groupdict(), method_arn)
        event = self._event(request, route, path, match.groupdict())
        if route.authorizer:
            refused, context = self._authorize(route.authorizer, event, method_arn)
            if refused:
                return refused
            event["requestContext"]["authorizer"] = context
        # API Gateway invokes the function as itself; only the function's resource policy lets it.
        if not self._may_invoke(route.function, method_arn):
            return self._error(500, "Internal server error")
        result = self.lambdas.invoke(route.function, json.dumps(event).encode())
        if result.function_error:
            return self._error(502, "Internal server error")
        return self._response(result.payload)

    def _dispatch_http_api(
        self, request: Request, route: Route, path: str, parameters: dict[str, str], method_arn: str
    ) -> Response:
        if not self._may_invoke(route.function, method_arn):
            return self._error(500, "Internal Server Error")
        event = self._event_v2(request, route, path, parameters)
        result = self.lambdas.invoke(route.function, json.dumps(event).encode())
        if result.function_error:
            return self._error(500, "Internal Server Error")
        payload = result.payload
        if isinstance(payload, dict) and "statusCode" in payload:
            response = self._response(payload)
            for cookie in payload.get("cookies") or []:
                response.headers.add("Set-Cookie", cookie)
            return response
        # Format 2.0 lets a function return just its body: API Gateway answers 200 with it as JSON.
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return Response(body, status=200, content_type="application/json")

    def _event_v2(self, request: Request, route: Route, path: str, parameters: dict[str, str]) -> dict[str, Any]:
        body, encoded = _event_body(request)
        # Format 2.0 joins repeated headers and query parameters with commas, and names headers in lower case.
        headers = {k.lower(): ",".join(request.headers.getlist(k)) for k, _ in request.headers.items()}
        headers.pop("cookie", None)
        route_key = f"{route.method} {route.path}"
        now = time.time()
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode(),
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": self.api_id,
                "domainName": request.host,
                "domainPrefix": request.host.split(".", 1)[0],
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": request.remote_addr,
                    "userAgent": request.headers.get("User-Agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": self.stage,
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": encoded,
        }
        if request.cookies:
            event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items(multi=True)]
        if request.args:
            event["queryStringParameters"] = {k: ",".join(request.args.getlist(k)) for k in request.args}
        if parameters:
            event["pathParameters"] = parameters
        if body:
            event["body"] = body
        return event

    def _may_invoke(self, function: str, source_arn: str) -> bool:
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        decision = self.access.check_service(
            "apigateway.amazonaws.com", source_arn, function, "lambda:InvokeFunction", function_arn
        )
        return decision.allowed

    def _authorize(
        self, authorizer: Authorizer, event: dict[str, Any], method_arn: str
    ) -> tuple[Response | None, dict[str, Any]]:
        """API Gateway's Lambda authorizer contract: (the refusal, or None and the context the integration sees)."""
        headers = {k.lower(): v for k, v in event["headers"].items()}
        if any(not headers.get(name.lower()) for name in authorizer.identity_headers):
            return self._error(401, "Unauthorized"), {}
        source_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/authorizers/{authorizer.authorizer_id}"
        if not self._may_invoke(authorizer.function, source_arn):
            return self._error(500, None), {}
        if authorizer.payload_type == "TOKEN":
            token = headers.get(authorizer.identity_headers[0].lower(), "")
            request = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        else:
            request = {"type": "REQUEST", "methodArn": method_arn, **event}
        result = self.lambdas.invoke(authorizer.function, json.dumps(request).encode())
        answer = result.payload
        if result.function_error:
            unauthorized = isinstance(answer, dict) and answer.get("errorMessage") == "Unauthorized"
            return (self._error(401, "Unauthorized") if unauthorized else self._error(500, None)), {}
        context = answer.get("context") or {} if isinstance(answer, dict) else None
        if (
            not isinstance(answer, dict)
            or "principalId" not in answer
            or not isinstance(context, dict)
            or any(isinstance(v, dict | list) for v in context.values())
        ):
            return self._error(500, None), {}  # AuthorizerConfigurationException
        decision = evaluate(
            IamRequest(Caller(str(answer["principalId"])), "execute-api:Invoke", method_arn),
            [answer.get("policyDocument") or {}],
        )
        if not decision.allowed:
            explicit = "explicit deny" in decision.message
            message = "User is not authorized to access this resource" + (" with an explicit deny" if explicit else "")
            return Response(json.dumps({"Message": message}), status=403, content_type="application/json"), {}
        return None, {**context, "principalId": answer["principalId"], "integrationLatency": 0}

    def _event(self, request: Request, route: Route, path: str, parameters: dict[str, str]) -> dict[str, Any]:
        body, encoded = _event_body(request)
        # API Gateway adds these on the way in; a function builds its own URLs from them.
        forwarded = {
            "X-Forwarded-For": request.remote_addr or "",
            "X-Forwarded-Port": str(request.environ.get("SERVER_PORT", "")),
            "X-Forwarded-Proto": request.scheme,
        }
        headers = {**dict(request.headers.items()), **forwarded}
        multi_headers = {k: request.headers.getlist(k) or [v] for k, v in headers.items()}
        query = {k: v for k, v in request.args.items()} or None
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": request.method,
                "path": request.path,
                "stage": self.stage,
                "domainName": request.host,
                "apiId": self.api_id,
                "accountId": ACCOUNT,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": request.remote_addr, "userAgent": request.headers.get("User-Agent")},
            },
            "body": body or None,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def _response(payload: Any) -> Response:
        if not isinstance(payload, dict) or "statusCode" not in payload:
            return LocalApi._error(502, "Internal server error")
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(payload["statusCode"]))
        response.headers.clear()
        for key, value in (payload.get("headers") or {}).items():
            response.headers[key] = str(value)
        for key, values in (payload.get("multiValueHeaders") or {}).items():
            response.headers.remove(key)
            for value in values:
                response.headers.add(key, str(value))
        response.headers.setdefault("Content-Type", "application/json")
        return response

    @staticmethod
    def _error(status: int, message: str | None) -> Response:
        return Response(json.dumps({"message": message}), status=status, content_type="application/json")
