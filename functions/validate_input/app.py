"""Check run input: the first state of the workflow."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from run_config import InvalidInput, build_run_config

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution=event.get("execution", {}).get("arn"))
    try:
        run = build_run_config(event.get("input"), event["execution"], event["defaults"])
    except InvalidInput as error:
        logger.warning("rejected run input", extra={"field": error.field, "problem": str(error)})
        raise
    logger.info("run config ready", extra={"runId": run["runId"], "dataVersion": run["dataVersion"]})
    return run
