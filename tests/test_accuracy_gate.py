"""Apply the accuracy gate: the decision rules on same-data evaluations, and the handler against moto's S3."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import REGION
from gate import MAX_SCHEMA_CHARS, decide, registry_schema
from handlers import LambdaContext, load_handler, sample_event
from hypothesis import given
from hypothesis import strategies as st

CLASSES = ["setosa", "versicolor", "virginica"]


def _model(name: str, recalls: list[float], support: int = 10) -> dict:
    """A model's evaluation on len(CLASSES) * support test rows, with the given per-class recall."""
    per_class = {
        c: {"precision": 1.0, "recall": r, "f1": r, "support": support} for c, r in zip(CLASSES, recalls, strict=True)
    }
    accuracy = sum(recalls) / len(recalls)
    return {"modelName": name, "rows": support * 3, "accuracy": accuracy, "perClass": per_class,
            "confusionMatrix": [[0] * 3] * 3}  # fmt: skip


def _evaluation(candidate: list[float], production: list[float] | None = None, error: str | None = None) -> dict:
    evaluation = {"testRows": 30, "classes": CLASSES, "candidate": _model("mlops-new", candidate),
                  "production": None, "data": {"trainRows": 90, "testRows": 30}}  # fmt: skip
    if production is not None:
        evaluation["production"] = _model("mlops-old", production)
    if error is not None:
        evaluation["production"] = {"modelName": "mlops-old", "error": error}
    return evaluation


GOOD = [1.0, 0.9, 0.9]  # accuracy 0.9333


def test_missing_candidate_accuracy_never_promotes() -> None:
    evaluation = _evaluation(GOOD)
    evaluation["candidate"]["accuracy"] = None
    decision = decide(evaluation, 0.9, 0.0, 0.05, None)
    assert not decision.promote and decision.reason.startswith("metric missing")


def test_below_threshold_is_not_promoted_and_names_the_rows() -> None:
    decision = decide(_evaluation([0.9, 0.8, 0.9]), 0.9, 0.0, 0.05, None)
    assert not decision.promote
    assert decision.reason == "below threshold: test:accuracy 0.8667 on 30 test rows < 0.9000"


def test_first_model_is_decided_by_the_threshold_alone() -> None:
    decision = decide(_evaluation(GOOD), 0.9, 0.5, 0.05, None)
    assert decision.promote and decision.reason.startswith("first model: test:accuracy 0.9333 on 30 test rows")
    assert decision.production is None


def test_both_models_are_compared_on_the_same_rows() -> None:
    decision = decide(_evaluation([1.0, 1.0, 0.9], GOOD), 0.9, 0.0, 0.05, "mlops-old")
    assert decision.promote
    assert decision.reason.startswith("better than production on the same 30 test rows: 0.9667 vs 0.9333 (+0.0333)")
    assert decision.production == {"modelName": "mlops-old", "metric": "test:accuracy", "value": 0.9333333333333332,
                                   "rows": 30}  # fmt: skip


def test_candidate_must_beat_production_by_the_minimum_improvement() -> None:
    decision = decide(_evaluation(GOOD, GOOD), 0.9, 0.02, 0.05, "mlops-old")
    assert not decision.promote
    assert decision.reason.startswith("not better than production on the same 30 test rows: 0.9333 vs 0.9333")
    tie = decide(_evaluation(GOOD, GOOD), 0.9, 0.0, 0.05, "mlops-old")  # a tie ships the fresher model
    assert tie.promote and tie.reason.startswith("as good as production on the same 30 test rows")


def test_a_class_that_regresses_blocks_promotion_even_when_the_average_improves() -> None:
    # virginica loses 3 of its 10 rows while the others gain: accuracy rises, the class regresses.
    decision = decide(_evaluation([1.0, 1.0, 0.7], [0.8, 0.8, 1.0]), 0.5, 0.0, 0.05, "mlops-old")
    assert not decision.promote
    assert decision.reason == (
        "class 'virginica' regresses: recall 0.7000 vs 1.0000 (-0.3000) on its 10 test rows, "
        "more than the allowed 0.0500"
    )
    assert decision.summary["classDeltas"]["virginica"]["rowsLost"] == 3


def test_one_row_is_not_evidence_of_a_class_regression() -> None:
    decision = decide(_evaluation([1.0, 1.0, 0.9], [1.0, 0.9, 1.0]), 0.9, 0.0, 0.05, "mlops-old")
    assert decision.promote


def test_a_production_model_that_cannot_score_the_data_is_not_compared_and_the_reason_says_why() -> None:
    why = "it needs 13 feature(s) this data does not have (alcohol, malic_acid ...)"
    decision = decide(_evaluation(GOOD, error=why), 0.9, 0.5, 0.05, "mlops-old")
    assert decision.promote
    assert decision.reason.startswith(f"production model mlops-old was not compared because {why}; test:accuracy")
    assert decision.production["value"] is None and decision.production["error"] == why


def test_a_production_model_registered_before_evaluations_is_not_compared() -> None:
    decision = decide(_evaluation(GOOD), 0.9, 0.5, 0.05, "mlops-legacy")
    assert decision.promote and "its registry entry names no artifacts to evaluate" in decision.reason


unit = st.floats(min_value=0, max_value=1, allow_nan=False)
recalls = st.lists(unit, min_size=3, max_size=3)


@given(candidate=recalls, production=st.none() | recalls, threshold=unit, gain=unit, margin=unit)
def test_promotion_implies_every_rule_holds(candidate, production, threshold, gain, margin) -> None:
    evaluation = _evaluation(candidate, production)
    decision = decide(evaluation, threshold, gain, margin, None if production is None else "mlops-old")
    value = evaluation["candidate"]["accuracy"]
    if decision.promote:
        assert value >= threshold - 1e-9
        if production is not None:
            assert value - evaluation["production"]["accuracy"] >= gain - 1e-9
            for before, after in zip(production, candidate, strict=True):
                assert before - after <= margin + 1e-9 or round((before - after) * 10) < 2


@pytest.fixture
def evaluation_in_s3(aws):
    event = sample_event("accuracy_gate")
    bucket, prefix = event["evaluationUri"].removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    return lambda evaluation: s3.put_object(Bucket=bucket, Key=f"{prefix}evaluation.json", Body=json.dumps(evaluation))


def test_handler_promotes_the_first_model_from_its_evaluation(evaluation_in_s3) -> None:
    evaluation_in_s3(_evaluation(GOOD))
    result = load_handler("accuracy_gate").lambda_handler(sample_event("accuracy_gate"), LambdaContext("gate"))
    assert result["promote"] is True and result["production"] is None
    assert result["candidate"] == {"modelName": "mlops-new", "metric": "test:accuracy", "value": 0.9333333333333332,
                                   "rows": 30}  # fmt: skip
    assert result["summary"]["classDeltas"]["setosa"]["candidate"] == 1.0


def test_handler_compares_with_the_production_model_the_workflow_found(evaluation_in_s3) -> None:
    evaluation_in_s3(_evaluation(GOOD, [1.0, 1.0, 1.0]))
    event = sample_event("accuracy_gate")
    event["productionLookup"] = {"Item": {"pk": {"S": "PRODUCTION"}, "modelName": {"S": "mlops-old"}}}
    result = load_handler("accuracy_gate").lambda_handler(event, LambdaContext("gate"))
    assert result["promote"] is False and result["production"]["modelName"] == "mlops-old"
    assert result["reason"].startswith("not better than production on the same 30 test rows")


def test_the_registry_keeps_the_whole_schema_or_counts_categories_when_it_is_too_large() -> None:
    small = {"label": {"name": "y", "type": "string", "classes": ["a", "b"]},
             "features": [{"name": "colour", "type": "category", "categories": ["red", "blue"]}]}  # fmt: skip
    assert registry_schema({"candidateSchema": small}) == small
    many = [f"category-{i:03d}" for i in range(255)]
    large = {**small, "features": [{"name": f"c{i}", "type": "category", "categories": many} for i in range(20)]}
    kept = registry_schema({"candidateSchema": large})
    assert len(json.dumps(kept)) <= MAX_SCHEMA_CHARS
    assert kept["features"][0] == {"name": "c0", "type": "category", "categoryCount": 255}
    assert kept["label"] == small["label"]
    assert registry_schema({}) is None  # an evaluation from before schemas were kept
