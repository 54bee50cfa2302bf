"""Evaluate candidate: reads the measured metric and the production model, then applies the gate."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from gate import as_metric, decide, metric_from

logger = Logger()


@cache
def _sagemaker() -> Any:
    return boto3.client("sagemaker")


@cache
def _registry() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["REGISTRY_TABLE"])


def candidate_metric(training_job: dict[str, Any]) -> tuple[str, float | None]:
    """The job name and its validation accuracy, describing the job when the .sync output lacks metrics."""
    name = training_job["TrainingJobName"]
    value = metric_from(training_job.get("FinalMetricDataList"))
    if value is None:
        described = _sagemaker().describe_training_job(TrainingJobName=name)
        value = metric_from(described.get("FinalMetricDataList"))
    return name, value


def production_model() -> dict[str, Any] | None:
    item = _registry().get_item(Key={"pk": "PRODUCTION", "sk": "CURRENT"}).get("Item")
    if not item:
        return None
    return {"modelName": item.get("modelName"), "value": as_metric(item.get("accuracy"))}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_name, value = candidate_metric(event["trainingJob"])
    decision = decide(value, float(event["accuracyThreshold"]), float(event["minImprovement"]), production_model())
    result = decision.as_dict()
    result["candidate"]["trainingJobName"] = job_name
    logger.info("gate decided", extra={"promote": decision.promote, "reason": decision.reason})
    return result
