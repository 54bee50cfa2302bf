"""API Gateway REQUEST authorizer of the review routes: with ReviewerAuth=cognito, a decision needs an approver."""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from session import Reviewer, allows, authorizer_context, refusal, session_token, unverified_claims

logger = Logger()


@cache
def _cognito() -> Any:
    return boto3.client("cognito-idp")


@cache
def _ssm() -> parameters.SSMProvider:
    # Its own provider rather than Powertools' process-wide default, so the client follows this module's
    # endpoint (tests and the local runtime load several stacks' functions into one process).
    return parameters.SSMProvider()


def _client_id() -> str:
    return _ssm().get(os.environ["CLIENT_ID_PARAMETER"], max_age=300)


def _reviewer(token: str) -> tuple[Reviewer | None, str | None]:
    reason = refusal(unverified_claims(token), _client_id(), time.time())
    if reason:
        return None, reason
    try:
        # Cognito checks the signature, expiry and revocation; its answer names the user.
        user = _cognito().get_user(AccessToken=token)
    except ClientError as error:
        if error.response["Error"]["Code"] == "NotAuthorizedException":
            return None, f"Cognito refused the token: {error.response['Error'].get('Message', '')}"
        raise
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    pages = (
        _cognito()
        .get_paginator("admin_list_groups_for_user")
        .paginate(UserPoolId=os.environ["USER_POOL_ID"], Username=user["Username"])
    )
    groups = {group["GroupName"] for page in pages for group in page["Groups"]}
    return Reviewer(attributes.get("email", ""), attributes["sub"], os.environ["APPROVERS_GROUP"] in groups), None


@event_source(data_class=APIGatewayAuthorizerRequestEvent)
@logger.inject_lambda_context
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    mode = os.environ["REVIEWER_AUTH"]
    reviewer, reason = None, None
    if mode == "cognito":
        token = session_token(event.headers.get("cookie"))
        reviewer, reason = _reviewer(token) if token else (None, "not signed in")
    arn = event.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=reviewer.sub if reviewer else "anonymous",
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        partition=arn.partition,
        context=authorizer_context(mode, reviewer, reason),
    )
    allowed = allows(mode, event.http_method, reviewer)
    logger.info("review request", extra={"method": event.http_method, "allowed": allowed, "refusal": reason})
    if allowed:
        # Any path of this method: with authorization caching off the policy answers this request only, and
        # a path Powertools' route check would refuse (";") must still reach the function's 404.
        response.allow_all_routes(http_method=arn.http_method)
    else:
        response.deny_all_routes()
    return response.asdict()
