"""The accuracy gate's decision: a pure function of the measured numbers.

Rules, in order:
1. A missing or non-numeric candidate metric never promotes.
2. Below the threshold never promotes (a tie with the threshold passes: "at least").
3. With no production model, the threshold alone decides.
4. With an unreadable production metric, the threshold alone decides and the reason says so.
5. Otherwise the candidate must beat production by at least ``min_improvement``; a tie passes
   when ``min_improvement`` is 0, so a model retrained on fresher data of equal quality ships.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

METRIC_NAME = "validation:accuracy"
# Metrics travel as decimals through JSON and DynamoDB; this absorbs their rounding.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: dict[str, Any]
    production: dict[str, Any] | None

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


def metric_from(final_metrics: list[dict[str, Any]] | None, name: str = METRIC_NAME) -> float | None:
    for metric in final_metrics or []:
        if metric.get("MetricName") == name:
            return as_metric(metric.get("Value"))
    return None


def decide(
    candidate_value: Any,
    threshold: float,
    min_improvement: float,
    production: dict[str, Any] | None,
) -> Decision:
    """Decides on promotion. ``production`` is ``{"modelName": ..., "value": ...}`` or None."""
    value = as_metric(candidate_value)
    candidate = {"metric": METRIC_NAME, "value": value}
    if value is None:
        return Decision(
            False, f"metric missing: the training job reported no numeric {METRIC_NAME}", candidate, production
        )
    if value + TOLERANCE < threshold:
        return Decision(False, f"below threshold: {METRIC_NAME} {value:.4f} < {threshold:.4f}", candidate, production)
    if production is None:
        return Decision(
            True, f"first model: {METRIC_NAME} {value:.4f} meets the threshold {threshold:.4f}", candidate, None
        )
    current = as_metric(production.get("value"))
    if current is None:
        return Decision(
            True,
            f"production model {production.get('modelName')} has no readable {METRIC_NAME}; "
            f"{value:.4f} meets the threshold {threshold:.4f}",
            candidate,
            production,
        )
    gain = value - current
    if gain + TOLERANCE < min_improvement:
        return Decision(
            False,
            f"not better than production: {value:.4f} vs {current:.4f} ({gain:+.4f}), "
            f"needs at least {min_improvement:+.4f}",
            candidate,
            production,
        )
    return Decision(
        True,
        f"better than production: {value:.4f} vs {current:.4f} ({gain:+.4f}), threshold {threshold:.4f}",
        candidate,
        production,
    )
