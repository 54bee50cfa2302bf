"""Evaluate candidate: the gate's decision rules, and the handler against a moto registry."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from conftest import REGION, create_table_from_template
from gate import decide, metric_from
from handlers import LambdaContext, load_handler, sample_event
from hypothesis import given
from hypothesis import strategies as st

PRODUCTION = {"modelName": "mlops-previous", "value": 0.93}


@pytest.mark.parametrize("value", [None, "n/a", float("nan"), float("inf"), True, {}])
def test_missing_or_non_numeric_metric_never_promotes(value) -> None:
    decision = decide(value, 0.9, 0.0, None)
    assert not decision.promote
    assert decision.reason.startswith("metric missing")


def test_below_threshold_is_not_promoted_and_says_by_how_much() -> None:
    decision = decide(0.87, 0.9, 0.0, None)
    assert not decision.promote
    assert decision.reason == "below threshold: validation:accuracy 0.8700 < 0.9000"


def test_meeting_the_threshold_exactly_passes() -> None:
    assert decide(0.9, 0.9, 0.0, None).promote


def test_first_model_is_decided_by_the_threshold_alone() -> None:
    decision = decide(0.95, 0.9, 0.5, None)
    assert decision.promote and decision.reason.startswith("first model")
    assert decision.production is None


def test_candidate_must_beat_production_by_the_minimum_improvement() -> None:
    decision = decide(0.94, 0.9, 0.02, PRODUCTION)
    assert not decision.promote
    assert decision.reason.startswith("not better than production: 0.9400 vs 0.9300 (+0.0100)")
    assert decide(0.96, 0.9, 0.02, PRODUCTION).promote


def test_a_tie_with_production_ships_the_fresher_model_only_when_no_improvement_is_required() -> None:
    assert decide(0.93, 0.9, 0.0, PRODUCTION).promote
    assert not decide(0.93, 0.9, 0.001, PRODUCTION).promote


def test_worse_than_production_is_not_promoted() -> None:
    assert not decide(0.92, 0.9, 0.0, PRODUCTION).promote


def test_unreadable_production_metric_falls_back_to_the_threshold() -> None:
    decision = decide(0.95, 0.9, 0.0, {"modelName": "broken", "value": None})
    assert decision.promote and "no readable" in decision.reason


def test_metric_is_read_by_name_from_the_final_metric_list() -> None:
    metrics = sample_event("accuracy_gate")["trainingJob"]["FinalMetricDataList"]
    assert metric_from(metrics) == 0.9565
    assert metric_from([{"MetricName": "train:accuracy", "Value": 1.0}]) is None


unit = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(value=unit, threshold=unit, gain=unit, production=st.none() | unit)
def test_promotion_implies_every_rule_holds(value, threshold, gain, production) -> None:
    current = None if production is None else {"modelName": "p", "value": production}
    decision = decide(value, threshold, gain, current)
    if decision.promote:
        assert value >= threshold - 1e-9
        if production is not None:
            assert value - production >= gain - 1e-9
    else:
        assert value < threshold or (production is not None and value - production < gain)


@given(value=unit, better=unit, threshold=unit, gain=unit, production=st.none() | unit)
def test_a_better_candidate_is_never_treated_worse(value, better, threshold, gain, production) -> None:
    current = None if production is None else {"modelName": "p", "value": production}
    higher = max(value, better)
    if decide(value, threshold, gain, current).promote:
        assert decide(higher, threshold, gain, current).promote


@pytest.fixture
def registry(aws, monkeypatch):
    monkeypatch.setenv("REGISTRY_TABLE", "registry")
    return create_table_from_template("ModelRegistryTable", "registry")


def test_handler_promotes_the_first_model_from_the_sample_event(registry) -> None:
    result = load_handler("accuracy_gate").lambda_handler(sample_event("accuracy_gate"), LambdaContext("gate"))
    assert result["promote"] is True
    assert result["candidate"]["value"] == 0.9565
    assert result["candidate"]["trainingJobName"].startswith("mlops-")
    assert result["production"] is None


def test_handler_compares_with_the_production_model_in_the_registry(registry) -> None:
    registry.put_item(Item={"pk": "PRODUCTION", "sk": "CURRENT", "modelName": "mlops-old", "accuracy": Decimal("0.97")})
    result = load_handler("accuracy_gate").lambda_handler(sample_event("accuracy_gate"), LambdaContext("gate"))
    assert result["promote"] is False
    assert result["production"] == {"modelName": "mlops-old", "value": 0.97}
    assert result["reason"].startswith("not better than production")


def test_handler_describes_the_job_when_the_sync_output_has_no_metrics(registry) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    event = sample_event("accuracy_gate")
    job = event["trainingJob"]
    sagemaker.create_training_job(
        TrainingJobName=job["TrainingJobName"],
        AlgorithmSpecification={"TrainingImage": "sklearn:1.9-0", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/sagemaker",
        OutputDataConfig={"S3OutputPath": "s3://artifacts/models/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    event["trainingJob"] = {"TrainingJobName": job["TrainingJobName"]}
    result = load_handler("accuracy_gate").lambda_handler(event, LambdaContext("gate"))
    # moto's jobs report no metrics, so the described job is also "metric missing": never promoted.
    assert result["promote"] is False
    assert result["reason"].startswith("metric missing")
