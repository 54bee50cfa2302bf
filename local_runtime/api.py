"""API Gateway on 127.0.0.1: the template's Api routes, each invoking its handler with a REST proxy event."""

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
from local_runtime.lambdas import LambdaRuntime
from local_runtime.template import ACCOUNT, REGION


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as declared, e.g. /approvals/{id}
    function: str
    api_key_required: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        # Matched with fullmatch: "$" would accept a trailing newline in a path parameter.
        return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)))


class LocalApi:
    """A WSGI app serving one stage of one REST API."""

    def __init__(
        self, lambdas: LambdaRuntime, stage: str, routes: list[Route], api_key: str, access: AccessControl, api_id: str
    ) -> None:
        self.access = access
        self.api_id = api_id
        self.lambdas = lambdas
        self.stage = stage
        self.routes = routes
        self.api_key = api_key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        prefix = f"/{self.stage}"
        if not request.path.startswith(prefix + "/"):
            return self._error(403, "Missing Authentication Token")
        path = request.path[len(prefix) :]
        matching = [(r, m) for r in self.routes if (m := r.pattern.fullmatch(path))]
        if not matching:
            return self._error(403, "Missing Authentication Token")
        chosen = next(((r, m) for r, m in matching if r.method == request.method), None)
        if chosen is None:
            return self._error(403, "Missing Authentication Token")
        route, match = chosen
        if route.api_key_required and request.headers.get("x-api-key") != self.api_key:
            return self._error(403, "Forbidden")
        # API Gateway invokes the function as itself; only the function's resource policy lets it.
        source_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/{self.stage}/{request.method}{path}"
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{route.function}"
        decision = self.access.check_service(
            "apigateway.amazonaws.com", source_arn, route.function, "lambda:InvokeFunction", function_arn
        )
        if not decision.allowed:
            return self._error(500, "Internal server error")
        result = self.lambdas.invoke(
            route.function, json.dumps(self._event(request, route, path, match.groupdict())).encode()
        )
        if result.function_error:
            return self._error(502, "Internal server error")
        return self._response(result.payload)

    def _event(self, request: Request, route: Route, path: str, parameters: dict[str, str]) -> dict[str, Any]:
        raw = request.get_data()
        try:
            body, encoded = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        headers = dict(request.headers.items())
        multi_headers = {k: request.headers.getlist(k) for k in headers}
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
    def _error(status: int, message: str) -> Response:
        return Response(json.dumps({"message": message}), status=status, content_type="application/json")
