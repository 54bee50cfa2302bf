"""Review pages (GET) and the single-use decision (POST) behind API Gateway."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from decision import (
    BadDecision,
    DecisionRequest,
    body_text,
    csrf_matches,
    parse_decision,
    same_origin,
    valid_approval_id,
)
from pages import SECURITY_HEADERS, decided_page, expired_page, message_page, review_page
from sign_in import SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_SECONDS, BadSignIn, finish, start

logger = Logger()
app = APIGatewayRestResolver()
DECIDED = ("approved", "rejected")
# Step Functions' answers when the execution no longer waits for this token.
TOKEN_GONE = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
CLOSED = "The run no longer waits for this decision: nothing can be decided here, and nothing was deployed."


@cache
def _approvals() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["APPROVALS_TABLE"])


@cache
def _stepfunctions() -> Any:
    return boto3.client("stepfunctions")


def _header(name: str) -> str | None:
    """A request header by name, whatever case the client sent it in."""
    headers = app.current_event.headers or {}
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _html(status: int, body: str) -> Response:
    return Response(status_code=status, body=body, headers=dict(SECURITY_HEADERS))


# ------------------------------------------------------------ who is deciding (ReviewerAuth)
def _signed_in_reviews() -> bool:
    return os.environ.get("REVIEWER_AUTH", "link") == "cognito"


def _caller() -> dict[str, str]:
    """What the reviewer authorizer said about the caller (see functions/reviewer_authorizer)."""
    return (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}


def _not_an_approver(caller: dict[str, str]) -> Response:
    return _html(
        403,
        message_page(
            "Only approvers can review models",
            f"You are signed in as {caller.get('email') or 'a user'}, who is not in the approvers group. "
            "Ask the owner of the stack to add you.",
        ),
    )


@cache
def _ssm() -> parameters.SSMProvider:
    # Its own provider rather than Powertools' process-wide default, so the client follows this module's
    # endpoint (tests and the local runtime load several stacks' functions into one process).
    return parameters.SSMProvider()


def _client_id() -> str:
    return _ssm().get(os.environ["CLIENT_ID_PARAMETER"], max_age=300)


def _stage_path() -> str:
    return f"/{app.current_event.request_context.stage}"


def _callback_url() -> str:
    """The URL Cognito sends the reviewer back to: this API's /auth/callback, as the browser reaches it."""
    host = app.current_event.request_context.domain_name or _header("host")
    return f"{_header('x-forwarded-proto') or 'https'}://{host}{_stage_path()}/auth/callback"


def _cookie(name: str, value: str, path: str, max_age: int) -> Cookie:
    # Lax, not Strict: the browser comes back from Cognito's domain and must bring the sign-in cookie.
    return Cookie(name, value, path=path, secure=True, http_only=True, max_age=max_age, same_site=SameSite.LAX_MODE)


def _sign_in(approval_id: str) -> Response:
    begun = start(approval_id, os.environ["SIGN_IN_URL"], _client_id(), _callback_url())
    return Response(
        status_code=302,
        headers={"Location": begun.location, "Cache-Control": "no-store"},
        cookies=[_cookie(SIGN_IN_COOKIE, begun.cookie, f"{_stage_path()}/auth", SIGN_IN_SECONDS)],
    )


def _exchange(code: str, verifier: str) -> dict[str, Any]:
    """Cognito's tokens for the one-time code, proving with the PKCE verifier that this browser asked."""
    form = {
        "grant_type": "authorization_code",
        "client_id": _client_id(),
        "code": code,
        "redirect_uri": _callback_url(),
        "code_verifier": verifier,
    }
    request = urllib.request.Request(  # noqa: S310 - the stack's own Cognito domain, from its environment
        f"{os.environ['SIGN_IN_URL']}/oauth2/token",
        data=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - see above
            return json.loads(reply.read())
    except urllib.error.HTTPError as error:
        logger.info("Cognito refused the sign-in code", extra={"status": error.code})
        raise BadSignIn("Cognito did not accept this sign-in. Open the review link again.") from None


@app.get("/auth/callback")
def finish_sign_in() -> Response:
    if not _signed_in_reviews():
        return _not_found()
    query = app.current_event.query_string_parameters or {}
    try:
        if query.get("error"):
            raise BadSignIn(f"Cognito ended the sign-in: {query.get('error_description') or query['error']}.")
        verifier, approval_id = finish(_header("cookie"), query.get("state"))
        if not query.get("code"):
            raise BadSignIn("Cognito sent no sign-in code. Open the review link again.")
        tokens = _exchange(query["code"], verifier)
    except BadSignIn as error:
        return _html(400, message_page("Sign-in not finished", str(error)))
    return Response(
        status_code=303,
        headers={"Location": f"{_stage_path()}/approvals/{approval_id}", "Cache-Control": "no-store"},
        cookies=[
            _cookie(SESSION_COOKIE, tokens["access_token"], _stage_path(), int(tokens.get("expires_in", 3600))),
            _cookie(SIGN_IN_COOKIE, "", f"{_stage_path()}/auth", 0),
        ],
    )


def _not_found() -> Response:
    return _html(
        404, message_page("Review not found", "This review link is not valid. Check that you copied all of it.")
    )


def _load(approval_id: str) -> dict[str, Any] | None:
    return _approvals().get_item(Key={"approvalId": approval_id}, ConsistentRead=True).get("Item")


def _expired(item: dict[str, Any], now: datetime) -> bool:
    return item.get("status") == "expired" or datetime.fromisoformat(item["expiresAt"]) <= now


def _approval_id(routed: str) -> str | None:
    """The id as API Gateway passed it. The router's own match is anchored with "$", which lets a trailing
    newline through and drops it from ``routed``; the path parameter keeps every character."""
    given = (app.current_event.path_parameters or {}).get("id", routed)  # the template's /approvals/{id}
    return given if valid_approval_id(given) else None


@app.get("/approvals/<approval_id>")
def show_review(approval_id: str) -> Response:
    approval_id = _approval_id(approval_id)
    if approval_id is None:
        return _not_found()
    caller = _caller()
    if _signed_in_reviews():
        if caller.get("signedIn") != "true":
            return _sign_in(approval_id)
        if caller.get("approver") != "true":
            return _not_an_approver(caller)
    # No side effects here: mail scanners prefetch links.
    item = _load(approval_id)
    if item is None:
        return _not_found()
    if item.get("status") in DECIDED:
        return _html(200, decided_page(item, just_now=False))
    if _expired(item, datetime.now(UTC)):
        return _html(410, expired_page(item))
    if not _run_waits(item["executionArn"]):
        return _html(410, message_page("This review is closed", CLOSED))
    return _html(200, review_page(item, signed_in_as=caller.get("email") if _signed_in_reviews() else None))


def _run_waits(execution_arn: str) -> bool:
    """Whether the run still waits for this decision; a run resumed or stopped some other way does not."""
    try:
        return _stepfunctions().describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":  # past Step Functions' retention
            return False
        raise


@app.post("/approvals/<approval_id>")
def record_decision(approval_id: str) -> Response:
    approval_id = _approval_id(approval_id)
    if approval_id is None:
        return _not_found()
    if not same_origin(_header("origin"), _header("host")):
        return _html(403, message_page("Decision refused", "Decisions can only be sent from the review page itself."))
    try:
        event = app.current_event
        request = parse_decision(body_text(event.body, event.is_base64_encoded), _header("content-type") or "")
    except BadDecision as error:
        return _html(400, message_page("Decision not understood", str(error)))
    if _signed_in_reviews():
        # The authorizer already refused anyone else; the decision is signed with the identity, not a typed name.
        caller = _caller()
        if caller.get("approver") != "true":
            return _not_an_approver(caller)
        request = replace(request, reviewer=caller["email"], reviewer_sub=caller["sub"])
    item = _load(approval_id)
    if item is None:
        return _not_found()
    if item.get("status") in DECIDED:
        return _html(409, decided_page(item, just_now=False))
    now = datetime.now(UTC)
    if _expired(item, now):
        return _html(410, expired_page(item))
    if not csrf_matches(item["csrfToken"], request.csrf):
        return _html(403, message_page("Decision refused", "Open the review link again and decide from that page."))
    return _apply(item, request, now)


def _apply(item: dict[str, Any], request: DecisionRequest, now: datetime) -> Response:
    decided_at = now.isoformat(timespec="seconds")
    table = _approvals()
    try:
        # The condition makes the decision single-use: a replay or a double click finds it taken.
        table.update_item(
            Key={"approvalId": item["approvalId"]},
            UpdateExpression=(
                "SET #status = :decision, decidedBy = :who, decidedBySub = :sub, decidedAt = :at, #comment = :comment"
            ),
            ConditionExpression="#status = :pending AND expiresAt > :now",
            ExpressionAttributeNames={"#status": "status", "#comment": "comment"},
            ExpressionAttributeValues={
                ":decision": request.status,
                ":who": request.reviewer,
                ":sub": request.reviewer_sub,
                ":at": decided_at,
                ":comment": request.comment,
                ":pending": "pending",
                ":now": decided_at,
            },
        )
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        current = _load(item["approvalId"]) or item
        if current.get("status") in DECIDED:
            return _html(409, decided_page(current, just_now=False))
        return _html(410, expired_page(current))
    try:
        _send(item["taskToken"], item["approvalId"], request, decided_at)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in TOKEN_GONE:
            table.update_item(
                Key={"approvalId": item["approvalId"]},
                UpdateExpression="SET #status = :expired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expired": "expired"},
            )
            logger.info("decision arrived after the execution stopped waiting", extra={"code": code})
            return _html(410, expired_page(item))
        _release(item["approvalId"], request.status, decided_at)
        logger.exception("could not reach Step Functions")
        return _html(502, message_page("Please try again", "The decision could not be delivered. Nothing changed."))
    logger.info("decision recorded", extra={"decision": request.status, "execution": item.get("executionArn")})
    return _html(
        200,
        decided_page(
            {
                **item,
                "status": request.status,
                "decidedBy": request.reviewer,
                "decidedAt": decided_at,
                "comment": request.comment,
            },
            just_now=True,
        ),
    )


def _send(token: str, approval_id: str, request: DecisionRequest, decided_at: str) -> None:
    if request.status == "approved":
        output = {
            "approvalId": approval_id,
            "decision": "approved",
            "reviewer": request.reviewer,
            "reviewerSub": request.reviewer_sub,
            "comment": request.comment,
            "decidedAt": decided_at,
        }
        _stepfunctions().send_task_success(taskToken=token, output=json.dumps(output))
    else:
        cause = f"Rejected by {request.reviewer} at {decided_at}: {request.comment or 'no comment'}"
        _stepfunctions().send_task_failure(taskToken=token, error="ModelRejected", cause=cause)


def _release(approval_id: str, status: str, decided_at: str) -> None:
    """Undoes our claim after a transient failure, so the reviewer can simply click again."""
    _approvals().update_item(
        Key={"approvalId": approval_id},
        UpdateExpression="SET #status = :pending REMOVE decidedBy, decidedBySub, decidedAt, #comment",
        ConditionExpression="#status = :decision AND decidedAt = :at",
        ExpressionAttributeNames={"#status": "status", "#comment": "comment"},
        ExpressionAttributeValues={":pending": "pending", ":decision": status, ":at": decided_at},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
