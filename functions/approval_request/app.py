"""Wait for approval: stores the task token server-side and emails a review link.

Invoked by the ``lambda:invoke.waitForTaskToken`` state. A retried invocation for the same task
token returns the first result and sends no second email (Powertools idempotency).
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Key
from review import console_links, email, new_approval_id, production_history, score_predictions

logger = Logger()
# Expired approvals stay readable this long, so an old link says "expired" rather than "not found".
KEEP_AFTER_EXPIRY = timedelta(days=30)
MAX_PREDICTION_BYTES = 5 * 1024 * 1024


@cache
def _approvals() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["APPROVALS_TABLE"])


@cache
def _sns() -> Any:
    return boto3.client("sns")


@cache
def _s3() -> Any:
    return boto3.client("s3")


@cache
def _idempotency_store() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=os.environ["APPROVALS_TABLE"], key_attr="approvalId", expiry_attr="expiresAtEpoch"
    )


@cache
def _registry() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["REGISTRY_TABLE"])


def registry_history() -> list[dict[str, Any]]:
    """The production models so far, for the review's chart; the review goes out without it if unreadable."""
    items: list[dict[str, Any]] = []
    try:
        query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("MODEL")}
        while True:
            page = _registry().query(**query)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except Exception:
        logger.exception("could not read the model registry")
        return []
    return production_history(items)


def test_set_result(output_uri: str) -> dict[str, Any]:
    """Scores the batch-transform output; a reviewer still gets the email if it cannot be read."""
    location = urlparse(output_uri)
    lines: list[str] = []
    try:
        listing = _s3().list_objects_v2(Bucket=location.netloc, Prefix=location.path.lstrip("/"))
        for obj in listing.get("Contents", []):
            if obj["Key"].endswith(".out") and obj["Size"] <= MAX_PREDICTION_BYTES:
                body = _s3().get_object(Bucket=location.netloc, Key=obj["Key"])["Body"].read()
                lines.extend(body.decode("utf-8", "replace").splitlines())
    except Exception:
        logger.exception("could not read the batch-transform output", extra={"outputUri": output_uri})
        return {"rows": 0, "accuracy": None, "outputUri": output_uri}
    return {**score_predictions(lines), "outputUri": output_uri}


def request_review(request: dict[str, Any], now: datetime) -> dict[str, Any]:
    approval_id = new_approval_id()
    # The state's timeout runs from when the run started waiting, not from this invocation, which a cold
    # start or a retry can make seconds later: a link must not outlive the wait it answers.
    waiting_since = datetime.fromisoformat(request["waitingSince"])
    expires = waiting_since + timedelta(seconds=int(request["timeoutSeconds"]))
    expires_at = expires.isoformat(timespec="seconds")
    test_result = test_set_result(request["transform"]["outputUri"])
    review_url = f"{os.environ['API_BASE_URL'].rstrip('/')}/approvals/{approval_id}"
    _approvals().put_item(
        Item={
            "approvalId": approval_id,
            "status": "pending",
            "taskToken": request["taskToken"],
            "csrfToken": secrets.token_urlsafe(24),
            "executionArn": request["executionArn"],
            "modelName": request["modelName"],
            "trainingJobName": request.get("trainingJobName", ""),
            "gateReason": request["evaluation"].get("reason", ""),
            "candidateAccuracy": _decimal_text(request["evaluation"]["candidate"].get("value")),
            "productionModel": (request["evaluation"].get("production") or {}).get("modelName") or "",
            "productionAccuracy": _decimal_text((request["evaluation"].get("production") or {}).get("value")),
            "testAccuracy": _decimal_text(test_result.get("accuracy")),
            "testRows": test_result.get("rows", 0),
            "predictionsUri": test_result["outputUri"],
            "evidence": json.dumps(
                {
                    "summary": request["evaluation"].get("summary") or {},
                    "history": registry_history(),
                    "links": console_links(request, test_result["outputUri"], os.environ["AWS_REGION"]),
                },
                default=str,
            ),
            "createdAt": now.isoformat(timespec="seconds"),
            "expiresAt": expires_at,
            "expiresAtEpoch": int((expires + KEEP_AFTER_EXPIRY).timestamp()),
        },
        ConditionExpression="attribute_not_exists(approvalId)",
    )
    subject, body = email(
        request, review_url, test_result, expires_at, sign_in=os.environ.get("REVIEWER_AUTH") == "cognito"
    )
    _sns().publish(
        TopicArn=os.environ["TOPIC_ARN"],
        Subject=subject,
        Message=body,
        MessageAttributes={"outcome": {"DataType": "String", "StringValue": "review-requested"}},
    )
    # The review link is a capability, so it goes only into the email, never into the execution history.
    return {"reviewRequested": True, "expiresAt": expires_at}


def _decimal_text(value: Any) -> str:
    return "" if value is None else f"{float(value):.4f}"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution=event.get("executionArn"))
    config = IdempotencyConfig(event_key_jmespath="taskToken", hash_function="sha256", expires_after_seconds=86400)
    config.register_lambda_context(context)

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=_idempotency_store())
    def once_per_token(request: dict[str, Any]) -> dict[str, Any]:
        return request_review(request, datetime.now(UTC))

    result = once_per_token(request=event)
    logger.info("review requested", extra={"expiresAt": result["expiresAt"]})
    return result
