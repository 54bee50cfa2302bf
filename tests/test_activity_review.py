"""The activity-based model review (examples/activity-review) runs offline end to end: a scheduled worker takes the
activity's task, emails links that name a random review id (never the task token), and the decide function answers
the token once: approved runs succeed with the decision, rejected ones fail with ModelRejected."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from local_runtime.access import Check, checks_for
from local_runtime.stack import LocalDeployment, wait_for

APP = Path(__file__).resolve().parent.parent / "examples" / "activity-review"
URL = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalDeployment]:
    # No schedule fired here: the tests invoke the worker themselves (its first scheduled run is a minute away).
    with LocalDeployment(APP, "activity-review") as deployed:
        yield deployed


def _start(stack: LocalDeployment, model: str) -> str:
    sfn = stack.client("stepfunctions")
    machine = stack.outputs["ModelReviewMachineArn"]
    return sfn.start_execution(stateMachineArn=machine, input=json.dumps({"model": model}))["executionArn"]


def _run_worker(stack: LocalDeployment) -> dict[str, Any]:
    """One worker run, as the schedule starts it; it returns as soon as the waiting task is handed out."""
    reply = stack.client("lambda").invoke(FunctionName=stack.outputs["ReviewWorkerFunctionName"])
    assert "FunctionError" not in reply, reply["Payload"].read()
    return json.loads(reply["Payload"].read())


def _email_for(stack: LocalDeployment, model: str) -> dict[str, Any]:
    emails = wait_for(stack.read_inbox, 15, what=f"the review email for {model}")
    (email,) = [e for e in emails if e["Subject"] == f"Review model {model}"]
    return email


def _link(email: dict[str, Any], decision: str) -> str:
    (link,) = [url for url in URL.findall(email["Message"]) if url.endswith(f"/{decision}")]
    return link


def _stored_token(stack: LocalDeployment, link: str) -> str:
    review_id = link.rsplit("/", 2)[1]
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["ReviewsTableName"], Key={"reviewId": {"S": review_id}}
    )["Item"]
    return item["taskToken"]["S"]


def _finished(stack: LocalDeployment, execution_arn: str) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    return wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        15,
        what="the execution to finish",
    )


def test_the_fired_schedule_emails_links_without_the_token_and_approving_promotes_the_model() -> None:
    started = time.monotonic()
    with LocalDeployment(APP, "activity-review", fire_schedules=True) as fired:
        # The schedule's worker is already long-polling; the review task reaches it as the run gets there.
        execution = _start(fired, "churn-xgb-7")
        email = _email_for(fired, "churn-xgb-7")
        approve = _link(email, "approve")
        token = _stored_token(fired, approve)
        assert URL.findall(email["Message"]), "the email has links"
        assert all(token not in url for url in URL.findall(email["Message"]))
        assert token not in email["Message"]
        confirmation = requests.get(approve, timeout=10)  # opening the link only asks to confirm
        assert confirmation.status_code == 200
        assert '<form method="post">' in confirmation.text
        assert fired.client("stepfunctions").describe_execution(executionArn=execution)["status"] == "RUNNING"
        decided = requests.post(approve, timeout=10)
        assert decided.status_code == 200, decided.text
        finished = _finished(fired, execution)
        assert finished["status"] == "SUCCEEDED"
        assert json.loads(finished["output"]) == {
            "model": "churn-xgb-7",
            "decision": "approve",
            "reviewId": approve.rsplit("/", 2)[1],
        }
    assert time.monotonic() - started < 45


def test_a_rejected_review_fails_the_run_with_model_rejected(stack: LocalDeployment) -> None:
    execution = _start(stack, "churn-xgb-8")
    assert _run_worker(stack) == {"reviews": 1, "model": "churn-xgb-8"}
    reject = _link(_email_for(stack, "churn-xgb-8"), "reject")
    assert requests.post(reject, timeout=10).status_code == 200
    finished = _finished(stack, execution)
    assert finished["status"] == "FAILED"
    assert finished["error"] == "ModelRejected"
    assert finished["cause"].startswith("The reviewer rejected churn-xgb-8: review ")


def test_a_replayed_link_answers_409_and_changes_nothing(stack: LocalDeployment) -> None:
    execution = _start(stack, "churn-xgb-9")
    _run_worker(stack)
    email = _email_for(stack, "churn-xgb-9")
    approve, reject = _link(email, "approve"), _link(email, "reject")
    assert requests.post(approve, timeout=10).status_code == 200
    succeeded = _finished(stack, execution)
    replayed = [requests.post(reject, timeout=10), requests.post(approve, timeout=10), requests.get(reject, timeout=10)]
    assert [r.status_code for r in replayed] == [409, 409, 409]
    after = stack.client("stepfunctions").describe_execution(executionArn=execution)
    assert (after["status"], after["output"]) == ("SUCCEEDED", succeeded["output"])
    review_id = approve.rsplit("/", 2)[1]
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["ReviewsTableName"], Key={"reviewId": {"S": review_id}}
    )["Item"]
    assert item["decision"] == {"S": "approve"}


def test_a_forged_review_id_or_decision_answers_404(stack: LocalDeployment) -> None:
    base = stack.outputs["ReviewApiUrl"]
    assert requests.post(f"{base}/reviews/forged-review-id/approve", timeout=10).status_code == 404
    assert requests.get(f"{base}/reviews/forged-review-id/reject", timeout=10).status_code == 404
    execution = _start(stack, "churn-xgb-10")
    _run_worker(stack)
    approve = _link(_email_for(stack, "churn-xgb-10"), "approve")
    assert requests.post(approve.replace("/approve", "/promote"), timeout=10).status_code == 404
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=execution)


def test_the_worker_role_may_poll_its_own_activity_only(stack: LocalDeployment) -> None:
    sfn = stack.client("stepfunctions")
    other = sfn.create_activity(name="someone-elses-review")["activityArn"]
    worker = stack.client("lambda").get_function(FunctionName=stack.outputs["ReviewWorkerFunctionName"])
    as_worker = stack.client_as("stepfunctions", worker["Configuration"]["Role"], "review-worker")
    with pytest.raises(ClientError) as refused:
        as_worker.get_activity_task(activityArn=other)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_an_activity_call_is_checked_against_the_activity_it_names() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:activity:review"
    environ = {"HTTP_X_AMZ_TARGET": "AWSStepFunctions.GetActivityTask"}
    body = json.dumps({"activityArn": arn, "workerName": "w"}).encode()
    assert checks_for("states", environ, body) == [Check("states:GetActivityTask", arn)]
