"""Pure pieces of the approval request: ids, the test-set score, the review's evidence and the email text."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlparse

# The chart shows the most recent production models; older ones stay in the registry.
HISTORY_LENGTH = 20

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


def email(
    request: dict[str, Any], review_url: str, test_result: dict[str, Any], expires_at: str, sign_in: bool = False
) -> tuple[str, str]:
    """Subject and body of the review email. The link carries only the approval id; with ``sign_in``
    (ReviewerAuth=cognito) only a signed-in approver can decide, and the email says so."""
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
            *_class_changes(evaluation),
            *_schema_change(evaluation),
            f"Gate: {evaluation.get('reason')}",
            f"Test-set predictions ({test_result.get('rows', 0)} rows): {request['transform'].get('outputUri')}",
            f"Training job: {request.get('trainingJobName')}",
            "",
            "If you approve, this model replaces the production model on the endpoint.",
            "If you reject it, or nobody decides before the link expires, nothing changes.",
            "",
            f"Review and decide: {review_url}",
            *(["Sign in as a member of the approvers group to decide."] if sign_in else []),
            f"The link expires at {expires_at}.",
            f"Execution: {request.get('executionArn')}",
        ]
    )
    return subject, body


def console_links(request: dict[str, Any], predictions_uri: str, region: str) -> dict[str, dict[str, str]]:
    """Where a reviewer checks the training job and the artifacts: the name (or S3 URI) and its console page."""
    console = f"https://{region}.console.aws.amazon.com"
    links: dict[str, dict[str, str]] = {}
    job = request.get("trainingJobName")
    if job:
        links["trainingJob"] = {"name": job, "url": f"{console}/sagemaker/home?region={region}#/jobs/{quote(job)}"}
    for key, uri in (
        ("modelArtifacts", request.get("modelArtifacts")),
        ("evaluation", (request.get("evaluationUri") or "") and f"{request['evaluationUri']}evaluation.json"),
        ("predictions", predictions_uri),
    ):
        location = urlparse(uri or "")
        if location.scheme != "s3" or not location.netloc:
            continue
        key_path = location.path.lstrip("/")
        page = "buckets" if key_path.endswith("/") or not key_path else "object"
        url = f"{console}/s3/{page}/{quote(location.netloc)}?region={region}&prefix={quote(key_path)}"
        links[key] = {"name": uri, "url": url}
    return links


def production_history(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Models the registry has put in production, oldest first: name, accuracy, test rows, when, status."""
    history = [
        {
            "modelName": str(item.get("sk", "")),
            "accuracy": None if item.get("accuracy") is None else float(item["accuracy"]),
            "testRows": None if item.get("testRows") is None else int(item["testRows"]),
            "promotedAt": str(item.get("promotedAt", "")),
            "status": str(item.get("status", "")),
        }
        for item in items
        if item.get("promotedAt")
    ]
    history.sort(key=lambda entry: entry["promotedAt"])
    return history[-HISTORY_LENGTH:]


def _class_changes(evaluation: dict[str, Any]) -> list[str]:
    """The email's line on classes: the largest fall in a class's recall, when production was compared."""
    deltas = (evaluation.get("summary") or {}).get("classDeltas") or {}
    compared = [(name, d) for name, d in deltas.items() if d.get("delta") is not None]
    if not compared:
        return []
    name, worst = min(compared, key=lambda item: item[1]["delta"])
    if worst["delta"] >= 0:
        return ["No class's recall fell."]
    return [
        f"Largest fall in a class's recall: {name} {worst['candidate']:.4f} vs {worst['production']:.4f} "
        f"({worst['delta']:+.4f}, {worst['support']} test rows)"
    ]


def _schema_change(evaluation: dict[str, Any]) -> list[str]:
    """The email's line on columns and classes, when the candidate's differ from production's."""
    change = (evaluation.get("summary") or {}).get("schemaChange") or {}
    # Lists of names, or dicts keyed by feature name (retyped features, new categories): both list names.
    kinds = [
        f"{label} {', '.join(map(str, change[key]))}"
        for key, label in (
            ("featuresAdded", "new features"),
            ("featuresRemoved", "features gone"),
            ("classesAdded", "new classes"),
            ("classesRemoved", "classes gone"),
            ("featuresRetyped", "retyped"),
            ("newCategories", "new categories in"),
        )
        if change.get(key)
    ]
    if change.get("labelRenamed"):
        kinds.append(f"label renamed to {change['labelRenamed']['candidate']}")
    return [("Schema differs from production's: " + "; ".join(kinds))[:500]] if kinds else []
