"""Every failure path of the workflow ends in a notification and a Fail state, proven with mocked integrations.

Each case is a test case of statemachine/test/MockConfigFile.json: the expensive or hard-to-break
states answer from the file (a prepared data set, a trained model, an approval, a live endpoint),
one state fails the way its service would, and every other state runs for real on the local stack.
"""

from __future__ import annotations

import pipeline
import pytest
from asl import ROOT

from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

FUNNEL = pipeline.FAILURE_TAIL
DYNAMODB, SAGEMAKER, LAMBDA = (
    "DynamoDB.InternalServerErrorException",
    "SageMaker.AmazonSageMakerException",
    "Lambda.Unknown",
)
NOT_RECORDED = ["Approval not on record", *FUNNEL]
FAILURES = [
    ("ClaimStoreDown", "Claim data version", DYNAMODB, FUNNEL[2:]),
    ("LockStoreDown", "Take pipeline lock", DYNAMODB, FUNNEL),
    ("ProductionLookupFails", "Find production model", DYNAMODB, FUNNEL),
    ("EvaluationFails", "Score the candidate on the test set", SAGEMAKER, FUNNEL),
    ("ComparisonFails", "Score both models on the test set", SAGEMAKER, FUNNEL),
    ("GateCrashes", "Apply the accuracy gate", LAMBDA, FUNNEL),
    ("GateCrashesAndExplainingFails", "Apply the accuracy gate", LAMBDA, FUNNEL),
    ("ModelCreationFails", "Create scoring model", SAGEMAKER, FUNNEL),
    ("ScoringFailsAndMailIsDown", "Score test set", SAGEMAKER, FUNNEL),
    ("ReviewRequestFails", "Wait for approval", LAMBDA, FUNNEL),
    (
        "ResumedWithoutReview",
        "Does the approval name its record?",
        "ApprovalNotRecorded",
        ["Approval not on record", *FUNNEL],
    ),
    (
        "ApprovalNotOnRecord",
        "Confirm the recorded approval",
        "ApprovalNotRecorded",
        ["Approval not on record", *FUNNEL],
    ),
    ("ApprovalStoreDown", "Confirm the recorded approval", DYNAMODB, FUNNEL),
    ("ServingModelFails", "Create serving model", SAGEMAKER, FUNNEL),
    ("EndpointConfigFails", "Create endpoint config", SAGEMAKER, FUNNEL),
    ("EndpointCreationFails", "Create endpoint", SAGEMAKER, FUNNEL),
    ("EndpointUpdateFails", "Update endpoint", SAGEMAKER, FUNNEL),
    ("BlueGreenUpdateFails", "Update endpoint (blue/green)", SAGEMAKER, FUNNEL),
    ("StatusCheckFails", "Check endpoint status", SAGEMAKER, FUNNEL),
    ("EndpointNeverLive", "Deployment did not go live", "DeploymentFailed", FUNNEL),
    ("RegistryWriteFails", "Register production model", DYNAMODB, FUNNEL),
    ("RetireFails", "Retire previous model", DYNAMODB, FUNNEL),
    ("PointerFails", "Point registry at new model", DYNAMODB, FUNNEL),
]


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as local:
        yield local


def _run(stack, case: str):
    stack.read_inbox()  # forget earlier runs' mail
    stack.mail.clear()
    arn = pipeline.start_test_case(stack, case, {})
    return arn, pipeline.finish(stack, arn, timeout=120)


def test_a_fully_mocked_deployment_records_the_model(stack) -> None:
    arn, view = _run(stack, "DeployedWithMocks")
    assert view.status == "SUCCEEDED"
    assert pipeline.output(stack, arn)["outcome"] == "deployed"
    assert pipeline.registry(stack)[("PRODUCTION", "CURRENT")]["modelName"] == "mlops-mocked-run"


def test_an_instance_endpoint_is_updated_blue_green(stack) -> None:
    arn, view = _run(stack, "BlueGreenDeployed")
    assert view.status == "SUCCEEDED" and pipeline.output(stack, arn)["outcome"] == "deployed"
    names = pipeline.path(view)
    assert names[names.index("Choose update strategy") + 1 : names.index("Choose update strategy") + 3] == [
        "Update endpoint (blue/green)",
        "Wait for endpoint",
    ]


@pytest.mark.parametrize(("case", "failing_state", "error", "tail"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failing_step_ends_in_a_notification_and_run_failed(stack, case, failing_state, error, tail) -> None:
    _, view = _run(stack, case)
    names = pipeline.path(view)
    assert view.status == "FAILED"
    assert view.error == error
    assert names[names.index(failing_state) + 1 :] == tail
    mailed = pipeline.outcomes_mailed(stack)
    assert mailed == ([] if case == "ScoringFailsAndMailIsDown" else ["failed"])


def _failure_mail(stack) -> str:
    pipeline.outcomes_mailed(stack)
    (mail,) = [m for m in stack.mail if m["MessageAttributes"]["outcome"]["Value"] == "failed"]
    return mail["Message"]


def test_the_failure_email_and_cause_lead_with_what_failed_and_what_to_do(stack) -> None:
    _, view = _run(stack, "GateCrashes")
    lead = "One of the pipeline's functions failed: The function could not be run (mocked outage)."
    assert view.cause.startswith(lead + "\nWhat to do: ")
    assert _failure_mail(stack).startswith(lead)


def test_when_explaining_fails_the_raw_error_is_still_mailed_and_kept(stack) -> None:
    _, view = _run(stack, "GateCrashesAndExplainingFails")
    assert view.by_name()["Explain the failure"].error == LAMBDA
    assert view.cause == "The function could not be run (mocked outage)"
    assert _failure_mail(stack).startswith("The function could not be run (mocked outage) Execution: ")


def test_a_lock_held_elsewhere_ends_quietly_even_when_the_claim_cannot_be_given_back(stack) -> None:
    arn, view = _run(stack, "BusyAndClaimStuck")
    assert view.status == "SUCCEEDED" and pipeline.output(stack, arn)["outcome"] == "busy"
    assert pipeline.path(view)[-4:] == ["Give back data claim", "Skip busy pipeline", "Report outcome", "Run finished"]


def test_a_finished_run_succeeds_even_when_releasing_the_lock_and_mailing_fail(stack) -> None:
    arn, view = _run(stack, "LockReleaseAndOutcomeMailFail")
    assert view.status == "SUCCEEDED" and pipeline.output(stack, arn)["outcome"] == "deployed"
    assert pipeline.path(view)[-4:] == ["Release pipeline lock", "Notify outcome", "Report outcome", "Run finished"]
    assert view.by_name()["Notify outcome"].error == "SNS.AuthorizationErrorException"


def test_an_unknown_test_case_is_refused_with_a_clear_error(stack) -> None:
    sfn = stack.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ClientError, match="no test case 'NoSuchCase'"):
        sfn.start_execution(stateMachineArn=f"{stack.state_machine_arn}#NoSuchCase", input="{}")
