"""Wait for approval: the token stays server-side, one email per token, with the test-set result."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import boto3
import pytest
from conftest import REGION
from handlers import LambdaContext, load_handler, sample_event
from review import console_links, new_approval_id, production_history, score_predictions

API = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1"


def test_approval_ids_carry_192_random_bits() -> None:
    ids = {new_approval_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", i) for i in ids)


def test_predictions_are_scored_against_the_joined_labels() -> None:
    assert score_predictions(["setosa,setosa", "virginica,versicolor", "", "1,1.0", "2,3"]) == {
        "rows": 4,
        "accuracy": 0.5,
    }
    assert score_predictions([]) == {"rows": 0, "accuracy": None}


@pytest.fixture
def request_event(approvals, registry, inbox, monkeypatch):
    monkeypatch.setenv("API_BASE_URL", API)
    event = sample_event("approval_request")
    s3 = boto3.client("s3", region_name=REGION)
    bucket = "sfn-mlops-artifactsbucket-4d5e6f"
    s3.create_bucket(Bucket=bucket)
    key = "runs/new-data-3f1c2b-a1b2c3d4/test-predictions/part-00000.csv.out"
    s3.put_object(Bucket=bucket, Key=key, Body=b"setosa,setosa\nversicolor,versicolor\nvirginica,versicolor\n")
    return event


def _approval_items(table):
    return [i for i in table.scan()["Items"] if i.get("status") == "pending"]


def test_review_email_links_an_id_and_never_the_task_token(request_event, approvals, inbox) -> None:
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (message,) = inbox.messages()
    (item,) = _approval_items(approvals)
    assert item["taskToken"] == request_event["taskToken"]
    assert f"{API}/approvals/{item['approvalId']}" in message["Message"]
    assert request_event["taskToken"] not in message["Message"] + message["Subject"]
    assert "0.9583" in message["Message"] and "0.8333" in message["Message"]
    assert item["testAccuracy"] == "0.6667" and item["testRows"] == 3
    assert message["Subject"].startswith("Review model mlops-new-data-3f1c2b-a1b2c3d4")
    assert "Sign in" not in message["Message"]  # ReviewerAuth=link: the link alone decides


def test_expiry_counts_from_when_the_run_started_waiting_and_ttl_keeps_expired_links_readable(
    request_event, approvals
) -> None:
    from datetime import UTC, datetime, timedelta

    waiting_since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)  # a slow cold start
    request_event.update(timeoutSeconds=60, waitingSince=waiting_since.isoformat().replace("+00:00", "Z"))
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (item,) = _approval_items(approvals)
    expires = datetime.fromisoformat(item["expiresAt"])
    assert expires == waiting_since + timedelta(seconds=60)
    assert (expires - datetime.fromisoformat(item["createdAt"])).total_seconds() <= 31
    assert int(item["expiresAtEpoch"]) > expires.timestamp() + 86400


def test_a_retried_invocation_for_the_same_token_sends_no_second_email(request_event, approvals, inbox) -> None:
    handler = load_handler("approval_request").lambda_handler
    first = handler(request_event, LambdaContext("approval-request"))
    second = handler(request_event, LambdaContext("approval-request"))
    assert first == second
    assert len(inbox.messages()) == 1
    assert len(_approval_items(approvals)) == 1


def test_a_new_token_gets_a_new_review(request_event, approvals, inbox) -> None:
    handler = load_handler("approval_request").lambda_handler
    handler(request_event, LambdaContext("approval-request"))
    handler({**request_event, "taskToken": "another-token"}, LambdaContext("approval-request"))
    assert len(inbox.messages()) == 2
    assert len(_approval_items(approvals)) == 2


def test_unreadable_predictions_still_send_the_review(request_event, approvals, inbox) -> None:
    request_event["transform"]["outputUri"] = "s3://missing-bucket/nothing/"
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (message,) = inbox.messages()
    assert "test-set accuracy" in message["Message"]
    (item,) = _approval_items(approvals)
    assert item["testAccuracy"] == ""


def test_the_email_names_the_largest_fall_in_a_class_recall(request_event, inbox) -> None:
    deltas = request_event["evaluation"]["summary"]["classDeltas"]
    deltas["versicolor"].update(candidate=0.75, delta=-0.25)
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (message,) = inbox.messages()
    assert "Largest fall in a class's recall: versicolor 0.7500 vs 1.0000 (-0.2500, 8 test rows)" in message["Message"]


def test_the_review_keeps_the_evaluation_the_production_history_and_links(request_event, approvals, registry) -> None:
    for name, accuracy, promoted in (("mlops-second", "0.8333", "2026-11-08"), ("mlops-first", "1", "2026-11-01")):
        registry.put_item(Item={"pk": "MODEL", "sk": name, "accuracy": Decimal(accuracy), "testRows": 6,
                                "promotedAt": f"{promoted}T00:00:00Z", "status": "production"})  # fmt: skip
    registry.put_item(Item={"pk": "PRODUCTION", "sk": "CURRENT", "modelName": "mlops-second"})
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (item,) = _approval_items(approvals)
    evidence = json.loads(item["evidence"])
    assert evidence["summary"] == request_event["evaluation"]["summary"]
    assert [(h["modelName"], h["accuracy"]) for h in evidence["history"]] == [("mlops-first", 1.0),
                                                                              ("mlops-second", 0.8333)]  # fmt: skip
    assert evidence["links"]["trainingJob"]["name"] == request_event["trainingJobName"]
    assert evidence["links"]["modelArtifacts"]["name"] == request_event["modelArtifacts"]
    assert evidence["links"]["evaluation"]["name"] == request_event["evaluationUri"] + "evaluation.json"


def test_console_links_open_the_job_and_each_artifact_in_the_region() -> None:
    request = {"trainingJobName": "job-1", "modelArtifacts": "s3://b/runs/r/model/job-1/output/model.tar.gz",
               "evaluationUri": "s3://b/runs/r/evaluation/"}  # fmt: skip
    links = console_links(request, "s3://b/runs/r/test-predictions/", "eu-west-1")
    assert links["trainingJob"]["url"] == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/job-1"
    )
    assert links["modelArtifacts"]["url"].startswith("https://eu-west-1.console.aws.amazon.com/s3/object/b?")
    assert links["predictions"]["url"].startswith("https://eu-west-1.console.aws.amazon.com/s3/buckets/b?")
    assert "prefix=runs/r/evaluation/evaluation.json" in links["evaluation"]["url"]
    assert console_links({"modelArtifacts": "not-a-uri"}, "", "eu-west-1") == {}


def test_history_lists_models_that_reached_production_oldest_first_and_keeps_the_last_twenty() -> None:
    items = [{"sk": f"m{i:02d}", "accuracy": Decimal("0.9"), "promotedAt": f"2026-01-{i + 1:02d}"} for i in range(25)]
    items.append({"sk": "never-promoted", "accuracy": Decimal("0.99")})
    history = production_history(reversed(items))
    assert [h["modelName"] for h in history] == [f"m{i:02d}" for i in range(5, 25)]


def test_the_email_says_when_the_candidates_columns_differ_from_productions(request_event, inbox) -> None:
    request_event["evaluation"]["summary"]["schemaChange"] = {
        "featuresAdded": ["colour"], "featuresRemoved": [], "featuresRetyped": {"zip": {}}, "newCategories": {},
        "classesAdded": [], "classesRemoved": ["virginica"],
    }  # fmt: skip
    load_handler("approval_request").lambda_handler(request_event, LambdaContext("approval-request"))
    (message,) = inbox.messages()
    assert (
        "Schema differs from production's: new features colour; classes gone virginica; retyped zip"
        in (message["Message"])
    )
