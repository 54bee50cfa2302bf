"""Validation of prediction requests, independent of AWS.

Accepted bodies:
  {"data": "5.9,3.0,5.1,1.8"}                 one CSV row
  {"data": "5.9,3.0,5.1,1.8\\n6.2,2.9,4.3,1.3"}  several CSV rows
  {"instances": [[5.9, 3.0, 5.1, 1.8], ...]}  rows of numbers
The feature count is checked by the model itself, which knows it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

MAX_BODY_BYTES = 64 * 1024
MAX_ROWS = 1000
MAX_FEATURES = 10_000
# The largest float32: the model server's arrays cannot hold more, and would answer with a 500.
FLOAT32_MAX = 3.4028234663852886e38


class BadRequest(ValueError):
    """The client sent something we cannot predict on; the message says what to fix."""


def _quoted(value: Any) -> str:
    """A bad value as the error message shows it: never more than a few dozen characters."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def body_text(body: str | None, base64_encoded: bool) -> str:
    """The request body as text, as API Gateway passes it; a body that is not UTF-8 is a bad request."""
    if not body or not base64_encoded:
        return body or ""
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("the body is not UTF-8 text") from None


def _row(values: list[Any], index: int) -> list[float]:
    if not values:
        raise BadRequest(f"row {index + 1} is empty")
    if len(values) > MAX_FEATURES:
        raise BadRequest(f"row {index + 1} has more than {MAX_FEATURES} values")
    row = []
    for position, value in enumerate(values):
        where = f"row {index + 1}, value {position + 1}: {_quoted(value)}"
        if isinstance(value, bool):
            raise BadRequest(f"{where} is not a number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise BadRequest(f"{where} is not a number") from None
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise BadRequest(f"{where} is not a finite number")
        if abs(number) > FLOAT32_MAX:
            raise BadRequest(f"{where} is beyond the largest value the model takes (3.4e38)")
        row.append(number)
    return row


def parse_rows(body: str | None) -> list[list[float]]:
    """Returns the rows to predict on, or raises BadRequest."""
    if not body:
        raise BadRequest('send a JSON body such as {"data": "5.9,3.0,5.1,1.8"}')
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES // 1024} KB; send fewer rows per request")
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON ({error.msg} at position {error.pos})") from None
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON this API takes: nested too deeply or a number too long") from None
    if not isinstance(payload, dict) or ("data" in payload) == ("instances" in payload):
        raise BadRequest('the body must be an object with exactly one of "data" (CSV text) or "instances" (rows)')
    if "data" in payload:
        if not isinstance(payload["data"], str):
            raise BadRequest('"data" must be CSV text, one row per line')
        raw_rows: list[Any] = [line.split(",") for line in payload["data"].splitlines() if line.strip()]
    else:
        raw_rows = payload["instances"]
        if not isinstance(raw_rows, list) or not all(isinstance(r, list) for r in raw_rows):
            raise BadRequest('"instances" must be a list of rows, each a list of numbers')
    if not raw_rows:
        raise BadRequest("there are no rows to predict on")
    if len(raw_rows) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} rows per request, got {len(raw_rows)}")
    rows = [_row(values, index) for index, values in enumerate(raw_rows)]
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise BadRequest(f"all rows must have the same number of values, got {sorted(widths)}")
    return rows
