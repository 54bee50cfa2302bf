"""Stores each queued order; a batch that fails comes back from the queue and is retried."""

import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])


def handler(event: dict, context: object) -> dict:
    for record in event["Records"]:
        order = json.loads(record["body"])
        table.put_item(Item={"orderId": order["orderId"], "item": order["item"], "status": "received"})
    return {"stored": len(event["Records"])}
