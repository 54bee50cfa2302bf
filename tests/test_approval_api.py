"""The review page and the single-use decision, against a real (moto) execution waiting on a token."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import boto3
import pytest
from conftest import REGION
from decision import BadDecision, parse_decision, same_origin, valid_approval_id
from handlers import LambdaContext, load_handler, sample_event
from review import new_approval_id

HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


class WaitingExecution:
    """A Step Functions execution paused on a task token, as "Wait for approval" is."""

    def __init__(self, timeout_seconds: int = 60) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        queue = self.sqs.create_queue(QueueName=f"tokens-{time.monotonic_ns()}")["QueueUrl"]
        definition = {
            "StartAt": "Wait for approval",
            "States": {
                "Wait for approval": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": timeout_seconds,
                    "End": True,
                }
            },
        }
        machine = self.sfn.create_state_machine(
            name=f"review-{time.monotonic_ns()}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        self.arn = self.sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        self.token = self._poll(lambda: self.sqs.receive_message(QueueUrl=queue).get("Messages"))
        self.token = json.loads(self.token[0]["Body"])["token"]

    @staticmethod
    def _poll(probe, seconds: float = 10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := probe():
                return value
            time.sleep(0.05)
        raise AssertionError("timed out waiting")

    def result(self) -> dict:
        return self._poll(
            lambda: (d := self.sfn.describe_execution(executionArn=self.arn))["status"] != "RUNNING" and d
        )


@pytest.fixture
def api(approvals):
    handler = load_handler("approval_api").lambda_handler

    def call(method: str, approval_id: str, body: str | None = None, **headers: str) -> dict:
        event = sample_event("approval_api_get" if method == "GET" else "approval_api_post")
        event.update(httpMethod=method, path=f"/approvals/{approval_id}", body=body)
        event["pathParameters"] = {"id": approval_id}
        event["headers"] = {"Host": HOST, **headers}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        return handler(event, LambdaContext("approval-api"))

    return call


def _pending(
    approvals, token: str, expires_in: int = 3600, model: str = "mlops-candidate-1", execution_arn: str = ""
) -> dict:
    now = datetime.now(UTC)
    item = {
        "approvalId": new_approval_id(),
        "status": "pending",
        "taskToken": token,
        "csrfToken": "csrf-secret-value",
        "executionArn": execution_arn or "arn:aws:states:us-east-1:123456789012:execution:m:e",
        "modelName": model,
        "gateReason": "better than production",
        "candidateAccuracy": "0.9565",
        "productionModel": "mlops-previous",
        "productionAccuracy": "0.9130",
        "testAccuracy": "0.9333",
        "testRows": 15,
        "predictionsUri": "s3://artifacts/runs/x/test-predictions/",
        "evidence": json.dumps({"summary": sample_event("approval_request")["evaluation"]["summary"]}),
        "createdAt": now.isoformat(timespec="seconds"),
        "expiresAt": (now + timedelta(seconds=expires_in)).isoformat(timespec="seconds"),
        "expiresAtEpoch": int(now.timestamp()) + 86400,
    }
    approvals.put_item(Item=item)
    return item


def _form(decision: str, csrf: str = "csrf-secret-value", **extra: str) -> str:
    return urlencode({"decision": decision, "csrf": csrf, **extra})


FORM = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"https://{HOST}"}


def test_review_page_shows_both_models_and_has_no_side_effects(api, approvals) -> None:
    execution = WaitingExecution()
    item = _pending(approvals, execution.token, execution_arn=execution.arn)
    page = api("GET", item["approvalId"])
    assert page["statusCode"] == 200
    assert "0.9565" in page["body"] and "0.9130" in page["body"] and "0.9333" in page["body"]
    assert 'value="csrf-secret-value"' in page["body"]
    assert "<figure id=candidate-matrix>" in page["body"] and "<figure id=production-matrix>" in page["body"]
    assert page["body"].index("<table id=class-deltas>") < page["body"].index('<form method="post">')
    assert page["multiValueHeaders"]["Content-Security-Policy"][0].startswith("default-src 'none'")
    assert approvals.get_item(Key={"approvalId": item["approvalId"]})["Item"]["status"] == "pending"


def test_unknown_and_forged_ids_get_a_404_page(api) -> None:
    assert api("GET", "B" * 32)["statusCode"] == 404
    assert api("GET", "../../etc/passwd")["statusCode"] == 404
    assert api("POST", "short", _form("approve"), **FORM)["statusCode"] == 404


def test_approving_resumes_the_execution_with_the_reviewer(api, approvals, aws) -> None:
    execution = WaitingExecution()
    item = _pending(approvals, execution.token)
    reply = api("POST", item["approvalId"], _form("approve", reviewer="Dana", comment="ship it"), **FORM)
    assert reply["statusCode"] == 200 and "You approved this model" in reply["body"]
    done = execution.result()
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["reviewer"] == "Dana"


def test_rejecting_fails_the_task_with_model_rejected(api, approvals, aws) -> None:
    execution = WaitingExecution()
    item = _pending(approvals, execution.token)
    reply = api("POST", item["approvalId"], _form("reject", reviewer="Dana"), **FORM)
    assert reply["statusCode"] == 200
    done = execution.result()
    assert (done["status"], done["error"]) == ("FAILED", "ModelRejected")


def test_rejected_link_cannot_be_reused(api, approvals, aws) -> None:
    execution = WaitingExecution()
    item = _pending(approvals, execution.token)
    api("POST", item["approvalId"], _form("reject", reviewer="Dana"), **FORM)
    replay = api("POST", item["approvalId"], _form("approve"), **FORM)
    assert replay["statusCode"] == 409
    assert "Already decided: rejected by Dana" in replay["body"]
    assert execution.result()["status"] == "FAILED"
    later = api("GET", item["approvalId"])
    assert later["statusCode"] == 200 and "Already decided" in later["body"]


def test_expired_link_shows_expired_and_changes_nothing(api, approvals) -> None:
    item = _pending(approvals, "token", expires_in=-5)
    assert api("GET", item["approvalId"])["statusCode"] == 410
    reply = api("POST", item["approvalId"], _form("approve"), **FORM)
    assert reply["statusCode"] == 410 and "expired" in reply["body"]
    assert approvals.get_item(Key={"approvalId": item["approvalId"]})["Item"]["status"] == "pending"


def test_decision_after_the_execution_stopped_waiting_is_a_410(api, approvals, aws) -> None:
    item = _pending(approvals, "a-token-step-functions-never-issued")
    reply = api("POST", item["approvalId"], _form("approve"), **FORM)
    assert reply["statusCode"] == 410
    assert approvals.get_item(Key={"approvalId": item["approvalId"]})["Item"]["status"] == "expired"


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (None, FORM, 400),
        (_form("maybe"), FORM, 400),
        ("{not json", {**FORM, "Content-Type": "application/json"}, 400),
        (json.dumps({"decision": ["approve"]}), {**FORM, "Content-Type": "application/json"}, 400),
        (json.dumps({"decision": {"approve": 1}}), {**FORM, "Content-Type": "application/json"}, 400),
        ("[" * 3000 + "]" * 3000, {**FORM, "Content-Type": "application/json"}, 400),
        (_form("approve", csrf="guessed"), FORM, 403),
        (_form("approve", csrf=""), FORM, 403),
        (_form("approve"), {**FORM, "Origin": "https://evil.example"}, 403),
        (_form("approve"), {**FORM, "Origin": "null"}, 403),
    ],
)
def test_bad_or_cross_site_decisions_are_refused_and_change_nothing(api, approvals, body, headers, status) -> None:
    item = _pending(approvals, "token")
    assert api("POST", item["approvalId"], body, **headers)["statusCode"] == status
    assert approvals.get_item(Key={"approvalId": item["approvalId"]})["Item"]["status"] == "pending"


def test_wrong_method_is_a_client_error(api, approvals) -> None:
    item = _pending(approvals, "token")
    assert 400 <= api("DELETE", item["approvalId"])["statusCode"] < 500


def test_review_page_of_a_run_that_no_longer_waits_says_so_and_offers_no_decision(api, approvals) -> None:
    execution = WaitingExecution(timeout_seconds=1)
    item = _pending(approvals, execution.token, execution_arn=execution.arn)
    assert execution.result()["status"] == "FAILED"  # the task timed out: the run no longer waits
    page = api("GET", item["approvalId"])
    assert page["statusCode"] == 410 and "no longer waits" in page["body"]
    assert "<form" not in page["body"]


def test_stored_text_is_escaped_in_pages(api, approvals) -> None:
    execution = WaitingExecution()
    item = _pending(approvals, execution.token, model="<script>alert(1)</script>", execution_arn=execution.arn)
    body = api("GET", item["approvalId"])["body"]
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_decision_parsing_accepts_forms_and_json() -> None:
    assert parse_decision("decision=approve&csrf=x", "application/x-www-form-urlencoded").status == "approved"
    parsed = parse_decision(json.dumps({"decision": "reject", "csrf": "x", "comment": " meh "}), "application/json")
    assert (parsed.status, parsed.comment, parsed.reviewer) == ("rejected", "meh", "anonymous")
    with pytest.raises(BadDecision, match="decision must be"):
        parse_decision("csrf=x", "application/x-www-form-urlencoded")


def test_approval_ids_are_matched_whole_so_a_trailing_newline_is_refused() -> None:
    assert valid_approval_id("A" * 32)
    assert not valid_approval_id("A" * 32 + "\n")
    assert not valid_approval_id("A" * 31)


def test_same_origin_allows_only_the_api_host() -> None:
    assert same_origin(None, HOST)
    assert same_origin(f"https://{HOST}", HOST)
    assert not same_origin("https://evil.example", HOST)
