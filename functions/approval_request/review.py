"""Pure pieces of the approval request: ids, the test-set score and the email text."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

# 24 random bytes = 192 bits, URL-safe: far beyond guessing, and short enough for an email link.
ID_BYTES = 24


def new_approval_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def score_predictions(lines: Iterable[str]) -> dict[str, Any]:
    """Scores batch-transform output whose lines read ``label,prediction``."""
    rows = correct = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        label, _, predicted = line.rpartition(",")
        label = label.split(",", 1)[0].strip().strip('"')
        predicted = predicted.strip().strip('"')
        rows += 1
        correct += _same_label(label, predicted)
    return {"rows": rows, "accuracy": round(correct / rows, 4) if rows else None}


def _same_label(label: str, predicted: str) -> bool:
    if label == predicted:
        return True
    try:
        return float(label) == float(predicted)
    except ValueError:
        return False


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def email(request: dict[str, Any], review_url: str, test_result: dict[str, Any], expires_at: str) -> tuple[str, str]:
    """Subject and body of the review email. The link carries only the approval id."""
    evaluation = request["evaluation"]
    candidate = evaluation["candidate"]
    production = evaluation.get("production")
    model = request["modelName"]
    subject = f"Review model {model}: accuracy {_fmt(candidate.get('value'))}"[:100]
    current = (
        f"{production.get('modelName')} with {_fmt(production.get('value'))}"
        if production
        else "none yet (this would be the first model)"
    )
    body = "\n".join(
        [
            f"A new model is waiting for your review: {model}",
            "",
            f"{'':24}{'candidate':>12}{'production':>12}",
            f"{'same-data accuracy':24}{_fmt(candidate.get('value')):>12}"
            f"{_fmt(production.get('value')) if production else 'n/a':>12}",
            f"{'test-set accuracy':24}{_fmt(test_result.get('accuracy')):>12}{'':>12}",
            "",
            f"Current production model: {current}",
            f"Gate: {evaluation.get('reason')}",
            f"Test-set predictions ({test_result.get('rows', 0)} rows): {request['transform'].get('outputUri')}",
            f"Training job: {request.get('trainingJobName')}",
            "",
            "If you approve, this model replaces the production model on the endpoint.",
            "If you reject it, or nobody decides before the link expires, nothing changes.",
            "",
            f"Review and decide: {review_url}",
            f"The link expires at {expires_at}.",
            f"Execution: {request.get('executionArn')}",
        ]
    )
    return subject, body
