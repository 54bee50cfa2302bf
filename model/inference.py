"""SageMaker scikit-learn serving functions: model_fn, input_fn, predict_fn, output_fn.

Errors caused by the request start with "invalid input:" so the predict API can answer 400.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import joblib
import numpy as np


def model_fn(model_dir: str) -> Any:
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def _rows_from(text: str, content_type: str) -> list[list[Any]]:
    if content_type.startswith("text/csv"):
        return [row for row in csv.reader(io.StringIO(text)) if row]
    if content_type.startswith("application/json"):
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("invalid input: the body is not valid JSON") from None
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ValueError('invalid input: expected {"instances": [[...], ...]}')
        return rows
    raise ValueError(f"invalid input: unsupported content type {content_type!r}; use text/csv or application/json")


def input_fn(request_body: str | bytes, request_content_type: str) -> np.ndarray:
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    rows = _rows_from(text, request_content_type or "text/csv")
    if not rows:
        raise ValueError("invalid input: no rows")
    try:
        return np.asarray(rows, dtype=float)
    except ValueError:
        raise ValueError("invalid input: every value must be a number and every row the same length") from None


def predict_fn(input_data: np.ndarray, model: Any) -> np.ndarray:
    expected = model.n_features_in_
    if input_data.ndim != 2 or input_data.shape[1] != expected:
        got = input_data.shape[1] if input_data.ndim == 2 else "?"
        raise ValueError(f"invalid input: expected {expected} features per row, got {got}")
    return model.predict(input_data)


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    values = [p.item() if hasattr(p, "item") else p for p in prediction]
    if accept and accept.startswith("application/json"):
        return json.dumps({"predictions": values}), "application/json"
    return "\n".join(str(v) for v in values) + "\n", "text/csv"
