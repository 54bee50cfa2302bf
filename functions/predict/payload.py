"""Validation of prediction requests, independent of AWS and of the model.

Accepted bodies:
  {"data": "5.9,3.0,5.1,1.8"}                        one CSV row, as it appears in the CSV file
  {"data": "5.9,3.0,5.1,1.8\\n6.2,2.9,4.3,1.3"}      several CSV rows; quoted fields ("5.1", "Iris, setosa")
                                                     and a ';' or tab delimiter are read as in a CSV file
  {"instances": [[5.9, 3.0, "red", 1.8], ...]}       rows of values in the model's feature order
  {"instances": [{"sepal.length": 5.9, ...}, ...]}   rows as objects keyed by feature name
Values are numbers, text (a category, or a number as text) or null (missing). This function checks the
shape and what no model can take (non-UTF-8, deep nesting, long numbers, numbers beyond float32);
the model checks the rows against the schema it was trained on (feature names, types, categories),
and its "invalid input:" answers become 400s too.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import math
from typing import Any

MAX_BODY_BYTES = 64 * 1024
MAX_ROWS = 1000
MAX_FEATURES = 10_000
MAX_TEXT = 200
# The largest float32: the model server's arrays cannot hold more, and would answer with a 500.
FLOAT32_MAX = 3.4028234663852886e38
MISSING = ("", "na", "n/a", "nan", "null", "?")


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


def _number_check(number: float, where: str) -> None:
    if not math.isfinite(number):
        raise BadRequest(f"{where} is not a finite number")
    if abs(number) > FLOAT32_MAX:
        raise BadRequest(f"{where} is beyond the largest value the model takes (3.4e38)")


def _value(value: Any, where: str) -> Any:
    """One cell: null, a finite number within float32, or text (checked as a number when it reads as one)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{where}: {_quoted(value)} is not a number, text or null")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise BadRequest(f"{where}: {_quoted(value)} is longer than {MAX_TEXT} characters")
        text = value.strip()
        if text.lower() in MISSING:
            return value
        try:
            number = float(text)
        except ValueError:
            return value  # a category, or a word the model will refuse
        _number_check(number, f"{where}: {_quoted(value)}")
        return value
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if isinstance(value, float) and math.isnan(value):
        return None
    _number_check(number, f"{where}: {_quoted(value)}")
    return value


def _row(values: list[Any] | dict[str, Any], index: int) -> list[Any] | dict[str, Any]:
    if not values:
        raise BadRequest(f"row {index + 1} is empty")
    if len(values) > MAX_FEATURES:
        raise BadRequest(f"row {index + 1} has more than {MAX_FEATURES} values")
    if isinstance(values, dict):
        checked = {}
        for name, value in values.items():
            if len(name) > MAX_TEXT:
                raise BadRequest(f"row {index + 1}: the feature name {_quoted(name)} is too long")
            checked[name] = _value(value, f"row {index + 1}, {_quoted(name)}")
        return checked
    return [_value(value, f"row {index + 1}, value {position + 1}") for position, value in enumerate(values)]


def _delimiter(line: str) -> str:
    """A ';', tab or '|' outside quotes wins (none of them is a decimal mark, as a comma can be); else ','."""
    unquoted = "".join(line.split('"')[::2])
    return next((d for d in ("\t", ";", "|") if d in unquoted), ",")


def csv_rows(text: str) -> list[list[str]]:
    """CSV text as a spreadsheet writes it: quoted fields, ',' or ';' or tab, CRLF, a byte-order mark."""
    text = text.lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    return [row for row in csv.reader(lines, delimiter=_delimiter(lines[0])) if row]


def parse_rows(body: str | None) -> list[list[Any]] | list[dict[str, Any]]:
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
        try:
            raw_rows: list[Any] = csv_rows(payload["data"])
        except csv.Error as error:
            raise BadRequest(f'"data" is not CSV text this API can read ({error})') from None
    else:
        raw_rows = payload["instances"]
        lists = isinstance(raw_rows, list) and all(isinstance(r, list) for r in raw_rows)
        objects = isinstance(raw_rows, list) and all(isinstance(r, dict) for r in raw_rows)
        if not (lists or objects):
            raise BadRequest('"instances" must be a list of rows: all lists of values, or all objects keyed by feature')
    if not raw_rows:
        raise BadRequest("there are no rows to predict on")
    if len(raw_rows) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} rows per request, got {len(raw_rows)}")
    rows = [_row(values, index) for index, values in enumerate(raw_rows)]
    widths = {len(row) for row in rows if isinstance(row, list)}
    if len(widths) > 1:
        raise BadRequest(f"all rows must have the same number of values, got {sorted(widths)}")
    return rows
