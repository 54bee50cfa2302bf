"""The accuracy gate's decision: a pure function of the evaluation's same-data numbers.

The evaluation (model/evaluate.py) scored the candidate and the production model on the same held-out
test rows of this run. Rules, in order:
1. A missing or non-numeric candidate accuracy never promotes.
2. Below the threshold never promotes (a tie with the threshold passes: "at least").
3. With no production model, the threshold alone decides.
4. With a production model the evaluation could not score (other features, an older format), the
   threshold alone decides and the reason says why the models were not compared.
5. No class's recall may fall below production's by more than ``max_class_regression`` (and by at least
   two of its test rows, as one row is no evidence): an average that hides a class the model stopped
   recognising is not an improvement.
6. The candidate must beat production by at least ``min_improvement``; a tie passes at 0, so a model
   retrained on fresher data of equal quality ships.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

METRIC_NAME = "test:accuracy"
# Metrics travel as decimals through JSON and DynamoDB; this absorbs their rounding.
TOLERANCE = 1e-9
# A class regresses only when the candidate gets at least this many more of its test rows wrong: on a
# small test split one row moves a class's recall by more than any useful margin.
MIN_ROWS_LOST = 2
# Confusion matrices beyond this many classes stay in evaluation.json, out of the workflow's state.
MAX_CLASSES_IN_SUMMARY = 20
# The schema travels in the workflow's state (256 KB) to the registry item (400 KB); beyond this size its
# categories are counted rather than listed, and evaluation.json keeps them all.
MAX_SCHEMA_CHARS = 32_000


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: dict[str, Any]
    production: dict[str, Any] | None
    summary: dict[str, Any]
    schema: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_metric(value: Any) -> float | None:
    """A finite float, or None for anything that is not a usable metric value."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def class_deltas(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per class with test rows: recall of each model and the change, candidate minus production."""
    candidate = evaluation["candidate"]["perClass"]
    production = (evaluation.get("production") or {}).get("perClass") or {}
    deltas = {}
    for name, measured in candidate.items():
        before = (production.get(name) or {}).get("recall")
        deltas[name] = {
            "support": measured["support"],
            "candidate": measured["recall"],
            "production": before,
            "delta": None if before is None else round(measured["recall"] - before, 6),
            "rowsLost": None if before is None else round((before - measured["recall"]) * measured["support"]),
        }
    return deltas


def summary_of(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the review shows: the evaluation, without confusion matrices too large to draw."""
    summary = {
        key: evaluation.get(key) for key in ("testRows", "classes", "candidate", "production", "data", "schemaChange")
    }
    summary["classDeltas"] = class_deltas(evaluation)
    if len(evaluation.get("classes") or []) > MAX_CLASSES_IN_SUMMARY:
        for model in ("candidate", "production"):
            if summary.get(model):
                summary[model] = {k: v for k, v in summary[model].items() if k != "confusionMatrix"}
    return summary


def registry_schema(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate's schema as the registry keeps it: whole, or with category counts when too large."""
    schema = evaluation.get("candidateSchema")
    if not schema or len(json.dumps(schema)) <= MAX_SCHEMA_CHARS:
        return schema
    features = [
        {key: value for key, value in f.items() if key != "categories"}
        | ({"categoryCount": len(f["categories"])} if "categories" in f else {})
        for f in schema["features"]
    ]
    return {**schema, "features": features}


def decide(
    evaluation: dict[str, Any],
    threshold: float,
    min_improvement: float,
    max_class_regression: float,
    production_model: str | None,
) -> Decision:
    """Decides on promotion. ``production_model`` names the registry's production model, or is None."""
    rows = evaluation.get("testRows")
    value = as_metric((evaluation.get("candidate") or {}).get("accuracy"))
    candidate = {"modelName": (evaluation.get("candidate") or {}).get("modelName"), "metric": METRIC_NAME,
                 "value": value, "rows": rows}  # fmt: skip
    measured = evaluation.get("production") or {}
    current = as_metric(measured.get("accuracy"))
    production = None
    if production_model is not None:
        production = {"modelName": production_model, "metric": METRIC_NAME, "value": current, "rows": rows}
        if current is None:
            production["error"] = measured.get("error") or "its registry entry names no artifacts to evaluate"
    summary = summary_of(evaluation) if value is not None else {}

    def decision(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, candidate, production, summary, registry_schema(evaluation))

    if value is None:
        return decision(False, f"metric missing: the evaluation reported no numeric {METRIC_NAME}")
    on_rows = f"on {rows} test rows"
    if value + TOLERANCE < threshold:
        return decision(False, f"below threshold: {METRIC_NAME} {value:.4f} {on_rows} < {threshold:.4f}")
    if production is None:
        return decision(True, f"first model: {METRIC_NAME} {value:.4f} {on_rows} meets the threshold {threshold:.4f}")
    if current is None:
        return decision(
            True,
            f"production model {production_model} was not compared because {production['error']}; "
            f"{METRIC_NAME} {value:.4f} {on_rows} meets the threshold {threshold:.4f}",
        )
    regressions = [
        (name, d) for name, d in class_deltas(evaluation).items()
        if d["delta"] is not None and -d["delta"] > max_class_regression + TOLERANCE and d["rowsLost"] >= MIN_ROWS_LOST
    ]  # fmt: skip
    if regressions:
        name, worst = min(regressions, key=lambda item: item[1]["delta"])
        return decision(
            False,
            f"class {name!r} regresses: recall {worst['candidate']:.4f} vs {worst['production']:.4f} "
            f"({worst['delta']:+.4f}) on its {worst['support']} test rows, more than the allowed "
            f"{max_class_regression:.4f}",
        )
    gain = value - current
    if gain + TOLERANCE < min_improvement:
        return decision(
            False,
            f"not better than production on the same {rows} test rows: {value:.4f} vs {current:.4f} "
            f"({gain:+.4f}), needs at least {min_improvement:+.4f}",
        )
    verdict = "better than" if gain > TOLERANCE else "as good as"
    return decision(
        True,
        f"{verdict} production on the same {rows} test rows: {value:.4f} vs {current:.4f} ({gain:+.4f}), "
        f"threshold {threshold:.4f}, no class recall down by more than {max_class_regression:.4f}",
    )
