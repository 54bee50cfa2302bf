"""GET /reviews/{reviewId}/{decision} shows a page asking the reviewer to confirm (so a mail scanner that
follows links decides nothing); POST to the same path decides: it claims the review once, then answers the task
token kept in the table with SendTaskSuccess (approve) or SendTaskFailure (ModelRejected)."""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

stepfunctions = boto3.client("stepfunctions")
table = boto3.resource("dynamodb").Table(os.environ["REVIEWS_TABLE"])

DECISIONS = {"approve": "approved", "reject": "rejected"}
# Step Functions' answers for a token no task waits on any more: the run timed out, was stopped or ended.
GONE_TOKEN_ERRORS = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


def refusal_for(record: dict[str, Any] | None, decision: str, now: float) -> Refusal | None:
    """Why this review cannot be decided now, or None when it can."""
    if decision not in DECISIONS:
        return Refusal(404, "No such decision")
    if record is None:
        return Refusal(404, "No such review")
    if "decision" in record:
        return Refusal(409, f"This review was already decided: {record['decision']}")
    if int(record["expiresAt"]) <= now:
        return Refusal(410, "This review has expired")
    return None


def task_outcome(decision: str, review_id: str, model: str) -> dict[str, Any]:
    """The SendTaskSuccess or SendTaskFailure arguments (less the token) for the reviewer's decision."""
    if decision == "approve":
        return {"output": json.dumps({"decision": "approve", "reviewId": review_id, "model": model})}
    return {"error": "ModelRejected", "cause": f"review {review_id} rejected {model}"}


def _page(status: int, title: str, body: str = "") -> dict[str, Any]:
    document = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"
    return {"statusCode": status, "headers": {"Content-Type": "text/html; charset=utf-8"}, "body": document}


def handler(event: dict, context: object) -> dict:
    parameters = event.get("pathParameters") or {}
    review_id, decision = parameters.get("reviewId", ""), parameters.get("decision", "")
    now = time.time()
    record = table.get_item(Key={"reviewId": review_id}, ConsistentRead=True).get("Item") if review_id else None
    refusal = refusal_for(record, decision, now)
    if refusal:
        return _page(refusal.status, refusal.message)
    assert record is not None
    if event["requestContext"]["http"]["method"] == "GET":
        label = f"{decision.capitalize()} {html.escape(str(record['model']))}"
        confirm = f'<form method="post"><button type="submit">{label}</button></form>'
        return _page(200, f"{decision.capitalize()} model {record['model']}?", confirm)
    try:
        # Claimed before the token is answered: of two clicks at once, only one reaches Step Functions.
        table.update_item(
            Key={"reviewId": review_id},
            UpdateExpression="SET decision = :decision, decidedAt = :now",
            ConditionExpression="attribute_exists(reviewId) AND attribute_not_exists(decision)",
            ExpressionAttributeValues={":decision": decision, ":now": int(now)},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return _page(409, "This review was already decided")
        raise
    outcome = task_outcome(decision, review_id, str(record["model"]))
    try:
        if decision == "approve":
            stepfunctions.send_task_success(taskToken=record["taskToken"], **outcome)
        else:
            stepfunctions.send_task_failure(taskToken=record["taskToken"], **outcome)
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE_TOKEN_ERRORS:
            return _page(410, "The model no longer waits for this review")
        raise
    return _page(200, f"Model {record['model']} {DECISIONS[decision]}")
