"""POST /predict: validates the request and forwards it to this stack's endpoint, and only that one."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from payload import BadRequest, body_text, parse_rows

logger = Logger()
app = APIGatewayRestResolver()
# inference.py prefixes errors caused by the request with this, so they become 400s.
CLIENT_ERROR_MARK = "invalid input:"


@cache
def _runtime() -> Any:
    return boto3.client("sagemaker-runtime")


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _model_message(error: ClientError) -> str:
    """The model's refusal of the request, if that is what the error is.

    The scikit-learn container answers every exception from input_fn/predict_fn with a 500, so the
    "invalid input:" mark is what tells a refused request from a broken model; a container that answers
    4xx itself (OriginalStatusCode) is passed on as a 400 too, never counted as a server error.
    """
    message = error.response["Error"].get("Message", "")
    start = message.find(CLIENT_ERROR_MARK)
    if start >= 0:
        return message[start:].strip(' ".')
    original = error.response.get("OriginalStatusCode")
    if isinstance(original, int) and 400 <= original < 500:
        return str(error.response.get("OriginalMessage") or message)[:500] or "the model refused the request"
    return ""


@app.post("/predict")
def predict() -> Response:
    try:
        event = app.current_event
        rows = parse_rows(body_text(event.body, event.is_base64_encoded))
    except BadRequest as error:
        return _json(400, {"message": str(error)})
    try:
        reply = _runtime().invoke_endpoint(
            EndpointName=os.environ["ENDPOINT_NAME"],
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"instances": rows}),
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "ModelError" and _model_message(error):
            return _json(400, {"message": _model_message(error)})
        if code == "ValidationError":
            logger.warning("endpoint not available", extra={"code": code})
            return _json(503, {"message": "The model endpoint is not deployed yet; approve a model first."})
        logger.exception("endpoint call failed")
        return _json(502, {"message": "The model endpoint failed to answer; try again later."})
    except BotoCoreError:
        # Connection refused, timed out or cut: no answer at all, which a retry may get.
        logger.exception("endpoint unreachable")
        return _json(503, {"message": "The model endpoint could not be reached; try again later."})
    result = json.loads(reply["Body"].read())
    return _json(200, result)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
