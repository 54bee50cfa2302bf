"""SageMaker scikit-learn serving functions: model_fn, input_fn, predict_fn, output_fn.

Two request formats, both checked against the schema stored with the model (``schema.json``):

- ``application/json``: rows as the raw CSV holds them, ``{"instances": [[5.1, "red", ...], ...]}`` in
  the schema's feature order, or ``{"instances": [{"sepal.length": 5.1, "colour": "red"}, ...]}`` keyed by
  feature name (a feature left out is missing; the label column, if sent, is ignored). Numbers may be
  sent as text (``"5.1"``). A missing value is null, an empty string, NA, N/A, NaN, null or ?. A category
  the model has not seen is treated as missing. The answer is ``{"predictions": [...]}``, each label in the
  label column's type (numbers for a numeric label).
- ``text/csv``: rows as etl/prepared_data.py writes them, the format batch transform sends: numbers only,
  a category as its index in the schema, ``nan`` for missing. The answer is one label index per line, the
  same encoding as the label column of the prepared data, so a transform's joined output is scored by
  comparing two numbers.

Errors caused by the request start with "invalid input:" so the predict API can answer 400.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

import joblib
import numpy as np
from threadpoolctl import threadpool_limits

MISSING = ("", "na", "n/a", "nan", "null", "?")
MAX_SHOWN = 40
# Below this many rows a prediction runs on one thread: OpenMP's worker threads would cost more to wake
# (and spin, taking CPU from everything else on the host) than they save.
PARALLEL_MIN_ROWS = 10_000


def model_fn(model_dir: str) -> dict[str, Any]:
    """The estimator and the schema train.py stored beside it, with each category's index looked up once."""
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    with open(os.path.join(model_dir, "schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    codes = [{c: i for i, c in enumerate(f.get("categories", []))} for f in schema["features"]]
    return {"model": model, "schema": schema, "codes": codes}


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


def input_fn(request_body: str | bytes, request_content_type: str) -> dict[str, Any]:
    """The rows, not yet checked: the schema lives with the model, which predict_fn gets."""
    try:
        text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    except UnicodeDecodeError:
        raise ValueError("invalid input: the body is not UTF-8 text") from None
    content_type = (request_content_type or "text/csv").split(";")[0].strip().lower()
    if content_type == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        if not rows:
            raise ValueError("invalid input: no rows")
        return {"format": "prepared", "rows": rows}
    if content_type == "application/json":
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError("invalid input: the body is not valid JSON") from None
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not all(isinstance(row, list | dict) for row in rows):
            raise ValueError('invalid input: expected {"instances": [[...], ...]} or {"instances": [{...}, ...]}')
        if not rows:
            raise ValueError("invalid input: no rows")
        return {"format": "raw", "rows": rows}
    raise ValueError(
        f"invalid input: unsupported content type {request_content_type!r}; use text/csv or application/json"
    )


def _number(value: Any, where: str, decimal_comma: bool) -> float:
    if value is None or (isinstance(value, str) and value.strip().lower() in MISSING):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid input: {where} must be a number, got {_quoted(value)}")
    if isinstance(value, str):
        text = value.strip()
        if decimal_comma and text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"invalid input: {where} must be a number, got {_quoted(value)}") from None
    else:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"invalid input: {where} must be a finite number, got {_quoted(value)}")
    return number


def _category(value: Any, codes: dict[str, int], where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid input: {where} must be a category name, got {_quoted(value)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if text.lower() in MISSING:
        return math.nan
    return float(codes.get(text, math.nan))  # a category not seen in training is missing


def _raw_row(row: list[Any] | dict[str, Any], index: int, served: dict[str, Any]) -> list[float]:
    schema = served["schema"]
    features = schema["features"]
    names = [f["name"] for f in features]
    if isinstance(row, dict):
        unknown = [k for k in row if k not in names and k != schema["label"]["name"]]
        if unknown:
            raise ValueError(
                f"invalid input: row {index + 1} names {_quoted(unknown[0])}, which is not a feature; "
                f"the features are {', '.join(names)}"
            )
        values = [row.get(name) for name in names]
    else:
        if len(row) != len(names):
            raise ValueError(
                f"invalid input: expected {len(names)} features per row, got {len(row)}; "
                f"the features are {', '.join(names)}"
            )
        values = row
    decimal_comma = schema.get("delimiter", ",") != ","
    encoded = []
    for feature, codes, value in zip(features, served["codes"], values, strict=True):
        where = f"row {index + 1}, {feature['name']!r}"
        if feature["type"] == "category":
            encoded.append(_category(value, codes, where))
        else:
            encoded.append(_number(value, where, decimal_comma))
    return encoded


def _prepared_row(row: list[str], index: int, served: dict[str, Any]) -> list[float]:
    features = served["schema"]["features"]
    if len(row) != len(features):
        raise ValueError(f"invalid input: expected {len(features)} features per row, got {len(row)}")
    encoded = []
    for feature, value in zip(features, row, strict=True):
        where = f"row {index + 1}, {feature['name']!r}"
        number = _number(value, where, decimal_comma=False)
        known = math.isnan(number) or (number.is_integer() and 0 <= number < len(feature.get("categories", [])))
        if feature["type"] == "category" and not known:
            raise ValueError(f"invalid input: {where} must be a category index, got {_quoted(value)}")
        encoded.append(number)
    return encoded


def _prepared_matrix(rows: list[list[str]], served: dict[str, Any]) -> np.ndarray | None:
    """The fast path for batch transform: a well-formed prepared block converts in one step."""
    features = served["schema"]["features"]
    try:
        matrix = np.asarray(rows, dtype=float)
    except ValueError:
        return None
    if matrix.ndim != 2 or matrix.shape[1] != len(features) or np.isinf(matrix).any():
        return None
    for column, feature in enumerate(features):
        if feature["type"] == "category":
            values = matrix[:, column]
            present = values[~np.isnan(values)]
            if ((present != np.round(present)) | (present < 0) | (present >= len(feature["categories"]))).any():
                return None
    return matrix


def predict_fn(input_data: dict[str, Any], served: dict[str, Any]) -> dict[str, Any]:
    rows = input_data["rows"]
    matrix = _prepared_matrix(rows, served) if input_data["format"] == "prepared" else None
    if matrix is None:  # row by row, so an error names the row and the column
        convert = _prepared_row if input_data["format"] == "prepared" else _raw_row
        matrix = np.asarray([convert(row, i, served) for i, row in enumerate(rows)], dtype=float)
    with threadpool_limits(limits=None if len(matrix) >= PARALLEL_MIN_ROWS else 1, user_api="openmp"):
        indices = [int(i) for i in served["model"].predict(matrix)]
    classes = served["schema"]["label"]["classes"]
    return {"indices": indices, "labels": [classes[i] for i in indices]}


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    if accept and accept.startswith("application/json"):
        return json.dumps({"predictions": prediction["labels"]}, ensure_ascii=False), "application/json"
    return "\n".join(str(i) for i in prediction["indices"]) + "\n", "text/csv"
