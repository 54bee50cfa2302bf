"""Explain the failure: rewrites a failed run's Cause to lead with the sentence a person needs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from failure import explain

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    error = event.get("error") or {}
    explained = explain(error.get("Error", ""), error.get("Cause", ""))
    logger.info("failure explained", extra={"error": explained["Error"], "lead": explained["Cause"].split("\n", 1)[0]})
    return explained
