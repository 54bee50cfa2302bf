"""Runs on a schedule: takes one waiting review task from the activity, keeps its task token in the reviews table
under a random review id, and emails the reviewer links that name the id. The token never leaves AWS: a link
that is forwarded, logged or cached gives away only an id that works once and expires."""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

import boto3
from botocore.config import Config

# GetActivityTask holds the request up to 60 seconds; the client must wait longer than that before giving up.
stepfunctions = boto3.client("stepfunctions", config=Config(read_timeout=70, retries={"max_attempts": 1}))
table = boto3.resource("dynamodb").Table(os.environ["REVIEWS_TABLE"])
sns = boto3.client("sns")

WORKER_NAME = "review-worker"


def review_record(review_id: str, task_token: str, task_input: dict[str, Any], now: float, seconds: int) -> dict:
    """What the decide function needs to answer the task later, expiring with the review's own timeout."""
    return {
        "reviewId": review_id,
        "taskToken": task_token,
        "model": str(task_input.get("model", "unnamed model")),
        "createdAt": int(now),
        "expiresAt": int(now) + seconds,
    }


def review_email(review_id: str, api_url: str, task_input: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of the reviewer's email: what to review and where to decide, by review id only."""
    model = task_input.get("model", "unnamed model")
    base = f"{api_url.rstrip('/')}/reviews/{review_id}"
    body = "\n".join(
        [
            f"A new model, {model}, is waiting for your review.",
            f"Diagnostics: {task_input.get('diagnostics', 'none attached')}",
            "",
            f"Approve: {base}/approve",
            f"Reject: {base}/reject",
            "",
            "Each link opens a page that asks you to confirm; the review can be decided once.",
        ]
    )
    return f"Review model {model}", body


def handler(event: dict, context: object) -> dict:
    task = stepfunctions.get_activity_task(activityArn=os.environ["ACTIVITY_ARN"], workerName=WORKER_NAME)
    token = task.get("taskToken")
    if not token:  # the long poll ended with nothing to review
        return {"reviews": 0}
    task_input = json.loads(task.get("input") or "{}")
    review_id = secrets.token_urlsafe(32)
    record = review_record(review_id, token, task_input, time.time(), int(os.environ["REVIEW_SECONDS"]))
    table.put_item(Item=record, ConditionExpression="attribute_not_exists(reviewId)")
    subject, message = review_email(review_id, os.environ["REVIEW_API_URL"], task_input)
    sns.publish(TopicArn=os.environ["REVIEW_TOPIC_ARN"], Subject=subject, Message=message)
    return {"reviews": 1, "model": record["model"]}
