"""Failure notifications lead with the sentence a person needs, whatever shape the service's Cause has."""

from __future__ import annotations

import json

from failure import MAX_DETAIL, explain
from handlers import LambdaContext, load_handler

GLUE_RUN = {
    "Id": "jr_5cb0ebdb",
    "JobName": "mlops-prepare-data",
    "Arguments": {"--raw_input_uri": "s3://data/raw/iris.csv"},
    "JobRunState": "FAILED",
    "ErrorMessage": "DataQualityError: 15 of 150 rows (10.0%) are malformed, more than the allowed 5.0%",
}
TRAINING_JOB = {
    "TrainingJobName": "mlops-run-1-5c6b7a8e",
    "TrainingJobStatus": "Failed",
    "FailureReason": "AlgorithmError: n_estimators must be at least 1, got 0",
}


def test_a_data_problem_leads_with_the_rows_at_fault_and_what_to_do() -> None:
    explained = explain("Glue.JobRunFailed", json.dumps(GLUE_RUN))
    lead, todo, job, blank, detail = explained["Cause"].split("\n")
    assert explained["Error"] == "Glue.JobRunFailed"
    assert lead == "Preparing the data failed: 15 of 150 rows (10.0%) are malformed, more than the allowed 5.0%."
    assert todo.startswith("What to do: Fix the file")
    assert job == "Job: mlops-prepare-data" and blank == ""
    assert detail.startswith("Detail (Glue.JobRunFailed): {") and "jr_5cb0ebdb" in detail


def test_a_training_failure_leads_with_the_scripts_reason() -> None:
    cause = explain("SageMaker.TrainingJobFailed", json.dumps(TRAINING_JOB))["Cause"]
    assert cause.startswith("Training the candidate failed: n_estimators must be at least 1, got 0.\n")
    assert "Job: mlops-run-1-5c6b7a8e" in cause and "AlgorithmError" in cause  # the raw detail keeps it


def test_a_cause_that_is_already_a_sentence_is_not_repeated() -> None:
    cause = explain("InvalidInput", "accuracyThreshold: must be a number, got 'high'")["Cause"]
    assert cause == (
        "The run input is invalid: accuracyThreshold: must be a number, got 'high'.\n"
        "What to do: Correct the field named above and start the run again."
    )


def test_an_unknown_error_without_a_cause_still_says_what_happened() -> None:
    explained = explain("Custom.Boom", "")
    assert explained == {
        "Error": "Custom.Boom",
        "Cause": "A step of the run failed (Custom.Boom).\n"
        "What to do: See the detail below and the execution's history.",
    }
    assert explain("", "[1, 2]")["Cause"].startswith("A step of the run failed: [1, 2].")


def test_a_huge_cause_is_cut_to_stay_inside_step_functions_limits() -> None:
    huge = json.dumps({**GLUE_RUN, "ErrorMessage": "x" * 50_000})
    cause = explain("Glue.JobRunFailed", huge)["Cause"]
    assert len(cause) < 32_768 and len(cause) < MAX_DETAIL + 3_000


def test_the_handler_reads_the_error_the_catch_recorded() -> None:
    handler = load_handler("explain_failure").lambda_handler
    event = {"error": {"Error": "Glue.JobRunFailed", "Cause": json.dumps(GLUE_RUN)}}
    result = handler(event, LambdaContext("explain-failure"))
    assert result["Error"] == "Glue.JobRunFailed" and result["Cause"].startswith("Preparing the data failed: 15 of")
