"""Apply the accuracy gate: reads the run's evaluation.json and decides on its same-data numbers."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from gate import decide

logger = Logger()


@cache
def _s3() -> Any:
    return boto3.client("s3")


def read_evaluation(evaluation_uri: str) -> dict[str, Any]:
    location = urlparse(evaluation_uri)
    key = f"{location.path.lstrip('/').rstrip('/')}/evaluation.json"
    return json.loads(_s3().get_object(Bucket=location.netloc, Key=key)["Body"].read())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    item = (event.get("productionLookup") or {}).get("Item") or {}
    production_model = (item.get("modelName") or {}).get("S")
    decision = decide(
        read_evaluation(event["evaluationUri"]),
        float(event["accuracyThreshold"]),
        float(event["minImprovement"]),
        float(event["maxClassRegression"]),
        production_model,
    )
    logger.info("gate decided", extra={"promote": decision.promote, "reason": decision.reason})
    return decision.as_dict()
