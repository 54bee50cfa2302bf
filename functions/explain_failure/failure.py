"""A failed run's Error and Cause, rewritten to lead with the sentence a person needs.

Service integrations fail with a Cause that is the whole job description as JSON (Glue's JobRun,
SageMaker's Describe*Job), where the reason is one field deep. The explanation leads with what failed
and why, then what to do, then the raw detail, so the email and the execution's Cause read top down.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The first key found holds the reason: Glue's JobRun, SageMaker's Describe*Job, a Lambda error, other APIs.
REASON_KEYS = ("ErrorMessage", "FailureReason", "ExitMessage", "errorMessage", "Message", "message")
JOB_KEYS = ("JobName", "TrainingJobName", "ProcessingJobName", "TransformJobName", "EndpointName")
# Step Functions allows 32,768 characters of Cause; the raw detail is cut to stay well inside it.
MAX_DETAIL = 8000
MAX_REASON = 2000
ERROR_CLASS = re.compile(r"^[A-Z][A-Za-z]*(Error|Exception): ")

# Error name (or prefix) → what failed, in words, and what to do about it. The first match wins.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("InvalidInput", "The run input is invalid", "Correct the field named above and start the run again."),
    (
        "Glue.",
        "Preparing the data failed",
        "Fix the file as the reason says and upload it again under the raw-data prefix. The Glue job's own "
        "log is in CloudWatch under /aws-glue/jobs/.",
    ),
    (
        "SageMaker.TrainingJob",
        "Training the candidate failed",
        "Check the hyperparameters and the data; the training log is in CloudWatch under /aws/sagemaker/TrainingJobs.",
    ),
    (
        "SageMaker.ProcessingJob",
        "Scoring the models on the test set failed",
        "The evaluation log is in CloudWatch under /aws/sagemaker/ProcessingJobs.",
    ),
    (
        "SageMaker.TransformJob",
        "Scoring the test set failed",
        "The batch transform log is in CloudWatch under /aws/sagemaker/TransformJobs.",
    ),
    (
        "SageMaker.",
        "A SageMaker request failed",
        "Check the SageMaker quotas and the reason above; start the run again.",
    ),
    (
        "DeploymentFailed",
        "The new model did not go live",
        "The endpoint keeps serving the model the registry names. Check the endpoint's events and logs in "
        "the SageMaker console, then start the run again.",
    ),
    ("ApprovalNotRecorded", "Nothing was deployed", "Approve from the review link in the email."),
    ("States.Timeout", "A step ran past its time limit", "Start the run again; raise the step's limit if it recurs."),
    ("Lambda.", "One of the pipeline's functions failed", "Its log group in CloudWatch has the stack trace."),
)
FALLBACK = ("A step of the run failed", "See the detail below and the execution's history.")


def _reason(cause: str) -> tuple[str, str | None]:
    """The reason in the Cause, and the job it names (if any)."""
    try:
        parsed: Any = json.loads(cause)
    except ValueError:
        return cause.strip(), None
    if not isinstance(parsed, dict):
        return cause.strip(), None
    reason = next((str(parsed[k]) for k in REASON_KEYS if isinstance(parsed.get(k), str) and parsed[k].strip()), "")
    job = next((str(parsed[k]) for k in JOB_KEYS if isinstance(parsed.get(k), str)), None)
    return reason.strip(), job


def _sentence(text: str) -> str:
    text = ERROR_CLASS.sub("", text.strip())
    text = text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def explain(error: str, cause: str) -> dict[str, str]:
    """The same Error, and a Cause that leads with what failed, why, and what to do."""
    error, cause = str(error or "States.Unknown"), str(cause or "")
    what, todo = next(((w, t) for name, w, t in STEPS if error == name or error.startswith(name)), FALLBACK)
    reason, job = _reason(cause)
    lead = f"{what}: {_sentence(reason)}" if reason else f"{what} ({error})."
    lines = [lead, f"What to do: {todo}"]
    if job:
        lines.append(f"Job: {job}")
    detail = cause if len(cause) <= MAX_DETAIL else cause[:MAX_DETAIL] + "…"
    if detail and detail.strip() != reason:
        lines += ["", f"Detail ({error}): {detail}"]
    return {"Error": error, "Cause": "\n".join(lines)}
