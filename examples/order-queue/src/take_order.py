"""POST /orders: queues the order and answers 202 with its id; ProcessOrderFunction stores it."""

import json
import os
import uuid

import boto3

sqs = boto3.client("sqs")


def handler(event: dict, context: object) -> dict:
    try:
        order = json.loads(event.get("body") or "{}")
    except json.JSONDecodeError:
        return {"statusCode": 400, "body": json.dumps({"message": "the body must be JSON"})}
    if not isinstance(order, dict) or not order.get("item"):
        return {"statusCode": 400, "body": json.dumps({"message": "an order names an item"})}
    order_id = str(uuid.uuid4())
    sqs.send_message(QueueUrl=os.environ["ORDER_QUEUE_URL"], MessageBody=json.dumps({**order, "orderId": order_id}))
    return {"statusCode": 202, "body": json.dumps({"orderId": order_id})}
