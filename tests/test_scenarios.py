"""Every path a user cares about, as real executions through the local runtime.

The tests share one local stack and run in order: the first deploys a model, later ones compete
with it. Each asserts the outcome, the exact states taken, the notifications, the registry and the
endpoint. Failures that cannot be provoked for real here come from statemachine/test/MockConfigFile.json.
"""

from __future__ import annotations

import json
import threading

import pipeline
import pytest
import requests
from asl import ROOT
from botocore_shapes import response_errors

from local_runtime import actions
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

TRAINED = ["Check run input", "Claim data version", "Take pipeline lock", "Prepare data", "Train candidate model"]
GATE = ["Apply the accuracy gate", "Is the candidate good enough?"]
# The first run has nothing to compare with; every later one scores both models on its test split.
FIRST = [*TRAINED, "Find production model", "Is a model in production?", "Score the candidate on the test set", *GATE]
HEAD = [*TRAINED, "Find production model", "Is a model in production?", "Score both models on the test set", *GATE]
REVIEW = ["Create scoring model", "Score test set", "Wait for approval"]
TO_REVIEW = [*HEAD, *REVIEW]
APPROVED = ["Does the approval name its record?", "Confirm the recorded approval"]
TO_DEPLOY = [*APPROVED, "Create serving model", "Create endpoint config", "Look up live endpoint"]
STATUS_LOOP = ["Wait for endpoint", "Check endpoint status", "Is the endpoint live?"]
SUCCESS_TAIL = ["Release pipeline lock", "Notify outcome", "Report outcome", "Run finished"]
FAILURE_TAIL = pipeline.FAILURE_TAIL
SAMPLE = "6.3,3.3,6.0,2.5\n5.1,3.5,1.4,0.2"
FOREST = {"model": "random_forest"}


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as local:
        # The first model learns from a quarter of iris. Manual runs retrain on all of it with a forest: the
        # second scenario's forest beats the first model on the same test rows and goes to production, and
        # every later forest on the same data is then exactly as good, so each reaches the step it is about.
        local.retrain_data = pipeline.upload(local, "manual/iris.csv", pipeline.iris())
        yield local


@pytest.fixture
def state(stack):
    """What a run must leave alone: the registry, the endpoint and the mail so far."""
    stack.read_inbox()  # earlier runs' mail is not this test's
    stack.mail.clear()
    return {"registry": pipeline.registry(stack), "endpoint": pipeline.endpoint(stack)}


def _manual(stack, version: str, **extra) -> str:
    run_input = {"rawDataUri": stack.retrain_data, "dataVersion": version, "hyperparameters": FOREST, **extra}
    return pipeline.start(stack, run_input)


def _review(stack, decision: str, reviewer: str = "scenario test") -> str:
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    reply = actions.decide(link, decision, reviewer=reviewer, comment=f"{decision}d in a test")
    assert reply.status_code == 200, reply.text
    return link


def _task_token(stack, link: str) -> str:
    table = stack.template.physical_ids["ApprovalsTable"]
    item = stack.client("dynamodb").get_item(TableName=table, Key={"approvalId": {"S": link.rsplit("/", 1)[1]}})
    return item["Item"]["taskToken"]["S"]


def _late_outcome_is_refused(stack, link: str) -> None:
    """A decision sent straight to Step Functions after the task ended is refused, never taken."""
    sfn, token = stack.client("stepfunctions"), _task_token(stack, link)
    for send in (
        lambda: sfn.send_task_failure(taskToken=token, error="ModelRejected", cause="too late"),
        lambda: sfn.send_task_success(taskToken=token, output="{}"),
    ):
        with pytest.raises(sfn.exceptions.TaskTimedOut):
            send()


def _models(registry: dict) -> dict:
    return {key: item for key, item in registry.items() if key[0] in ("MODEL", "PRODUCTION")}


def _evaluation(stack, arn: str) -> dict:
    """The evaluation.json the run's Processing job wrote: the model name is the name prefix and the run id."""
    run_id = pipeline.output(stack, arn)["modelName"].removeprefix(f"{stack.template.parameters['NamePrefix']}-")
    key = f"runs/{run_id}/evaluation/evaluation.json"
    body = stack.client("s3").get_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=key)["Body"].read()
    return json.loads(body)


def _unchanged(stack, before) -> None:
    assert _models(pipeline.registry(stack)) == _models(before["registry"])
    after = pipeline.endpoint(stack)
    assert (after or {}).get("EndpointConfigName") == (before["endpoint"] or {}).get("EndpointConfigName")


def test_first_good_model_is_approved_and_deployed(stack, state) -> None:
    known = stack.executions()
    pipeline.upload(stack, "raw/iris-quarter.csv", pipeline.iris(every=4))
    arn = stack.next_execution(known)  # started by the template's EventBridge rule
    email = pipeline.review_email(stack)
    link = actions.review_link(email["Message"])
    assert link.startswith(stack.api_url + "/approvals/") and "none yet" in email["Message"]
    assert actions.decide(link, "approve", reviewer="first reviewer").status_code == 200

    view = pipeline.finish(stack, arn)
    assert view.status == "SUCCEEDED"
    assert pipeline.path(view) == [
        *FIRST, *REVIEW, *TO_DEPLOY, "Create endpoint", *STATUS_LOOP,
        "Register production model", "Was another model in production?", "Point registry at new model",
        "Model deployed", *SUCCESS_TAIL,
    ]  # fmt: skip
    result = pipeline.output(stack, arn)
    assert result["outcome"] == "deployed" and result["production"] is None
    assert result["candidate"]["metric"] == "test:accuracy" and result["candidate"]["rows"] > 0
    registry = pipeline.registry(stack)
    assert registry[("PRODUCTION", "CURRENT")]["modelName"] == result["modelName"]
    assert registry[("MODEL", result["modelName"])]["status"] == "production"
    assert registry[("MODEL", result["modelName"])]["approvedBy"] == "first reviewer"
    # The exact model code that trained it: what the deploy published, named by its hash.
    published = stack.template.attributes["ModelCode"]["Uri"]
    assert registry[("MODEL", result["modelName"])]["modelCode"] == result["modelCode"] == published
    schema = json.loads(registry[("MODEL", result["modelName"])]["schema"])
    assert [f["name"] for f in schema["features"]] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert schema["label"] == {"name": "label", "type": "string", "classes": ["setosa", "versicolor", "virginica"]}
    assert pipeline.outcomes_mailed(stack) == ["review-requested", "deployed"]
    endpoint = pipeline.endpoint(stack)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == result["modelName"]
    reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, SAMPLE)
    assert reply.status_code == 200 and reply.json() == {"predictions": ["virginica", "setosa"]}
    assert requests.post(stack.outputs["PredictUrl"], json={"data": SAMPLE}, timeout=10).status_code == 403
    wrong_shape = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "1,2")
    assert wrong_shape.status_code == 400
    assert "expected 4 features per row, got 2" in wrong_shape.json()["message"]


def test_a_model_better_on_the_same_rows_updates_the_endpoint_and_retires_the_old_one(stack, state) -> None:
    previous = state["registry"][("PRODUCTION", "CURRENT")]["modelName"]
    arn = _manual(stack, "scenario/better")
    _review(stack, "approve")
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [
        *TO_REVIEW, *TO_DEPLOY, "Choose update strategy",
        "Update endpoint",
        *STATUS_LOOP, "Register production model", "Was another model in production?", "Retire previous model",
        "Point registry at new model", "Model deployed", *SUCCESS_TAIL,
    ]  # fmt: skip
    result = pipeline.output(stack, arn)
    assert result["production"]["modelName"] == previous
    # Both numbers come from the same rows: this run's test split, scored by both models in one job.
    assert result["candidate"]["rows"] == result["production"]["rows"] > 0
    assert result["candidate"]["value"] > result["production"]["value"]
    evaluation = _evaluation(stack, arn)
    assert evaluation["data"]["testRowsSeenByProduction"] == 0
    reason = pipeline.registry(stack)[("MODEL", result["modelName"])]["gateReason"]
    assert reason.startswith(f"better than production on the same {evaluation['testRows']} test rows")
    assert evaluation["production"]["modelName"] == previous
    assert sum(map(sum, evaluation["production"]["confusionMatrix"])) == evaluation["testRows"]
    assert set(evaluation["data"]["baseline"]["drift"]) == {"sepal_length", "sepal_width", "petal_length",
                                                           "petal_width"}  # fmt: skip
    registry = pipeline.registry(stack)
    assert registry[("MODEL", previous)]["status"] == "retired"
    assert registry[("MODEL", previous)]["replacedBy"] == result["modelName"]
    assert registry[("PRODUCTION", "CURRENT")]["modelName"] == result["modelName"]
    endpoints = stack.client("sagemaker").list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in endpoints] == [stack.outputs["EndpointName"]]
    assert pipeline.endpoint(stack)["EndpointConfigName"] == result["modelName"]
    assert actions.predict(stack.outputs["PredictUrl"], stack.api_key, SAMPLE).status_code == 200


def test_candidate_below_the_accuracy_threshold_is_not_promoted(stack, state) -> None:
    # One stump can tell at most two of iris's three classes apart.
    stump = {"model": "random_forest", "n_estimators": 1, "max_depth": 1}
    arn = _manual(stack, "scenario/weak", hyperparameters=stump)
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*HEAD, "Not promoted", *SUCCESS_TAIL]
    result = pipeline.output(stack, arn)
    assert result["outcome"] == "not-promoted" and result["reason"].startswith("below threshold")
    assert pipeline.outcomes_mailed(stack) == ["not-promoted"]  # no review email
    _unchanged(stack, state)


def test_a_candidate_worse_than_production_on_the_same_rows_is_not_promoted(stack, state) -> None:
    # Gradient boosting on the same data misses one more versicolor test row than production's forest.
    arn = _manual(stack, "scenario/worse", hyperparameters={"model": "hist_gradient_boosting"})
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*HEAD, "Not promoted", *SUCCESS_TAIL]
    result = pipeline.output(stack, arn)
    assert result["candidate"]["value"] < result["production"]["value"]
    rows = result["candidate"]["rows"]
    assert result["reason"].startswith(f"not better than production on the same {rows} test rows: ")
    assert pipeline.outcomes_mailed(stack) == ["not-promoted"]
    _unchanged(stack, state)


def test_candidate_not_better_than_production_by_the_minimum_improvement_is_not_promoted(stack, state) -> None:
    arn = _manual(stack, "scenario/not-better", minImprovement=0.05)
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*HEAD, "Not promoted", *SUCCESS_TAIL]
    result = pipeline.output(stack, arn)
    assert result["reason"].startswith("not better than production")
    assert "needs at least +0.0500" in result["reason"]
    _unchanged(stack, state)


def test_a_candidate_that_stops_recognising_a_class_is_not_promoted_whatever_its_average(stack, state) -> None:
    # A single one-level tree can tell at most two of the three species apart.
    stump = {"model": "random_forest", "n_estimators": 1, "max_depth": 1}
    arn = _manual(stack, "scenario/class-regression", accuracyThreshold=0.3, hyperparameters=stump)
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*HEAD, "Not promoted", *SUCCESS_TAIL]
    result = pipeline.output(stack, arn)
    assert result["outcome"] == "not-promoted"
    assert result["reason"].startswith("class '") and "regresses: recall 0.0000 vs" in result["reason"]
    _unchanged(stack, state)


def test_rejected_model_changes_nothing_and_its_link_cannot_be_reused(stack, state) -> None:
    arn = _manual(stack, "scenario/rejected")
    link = _review(stack, "reject", reviewer="Dana")
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*TO_REVIEW, "Model rejected", *SUCCESS_TAIL]
    result = pipeline.output(stack, arn)
    assert result["outcome"] == "rejected" and result["reason"].startswith("Rejected by Dana")
    assert pipeline.outcomes_mailed(stack) == ["review-requested", "rejected"]
    replay = actions.decide(link, "approve", reviewer="Mallory")
    assert replay.status_code == 200 and "Already decided: rejected by Dana" in replay.text
    _late_outcome_is_refused(stack, link)
    _unchanged(stack, state)


def test_a_run_resumed_without_the_review_page_deploys_nothing(stack, state) -> None:
    """Anyone allowed GetExecutionHistory and SendTaskSuccess holds the token; only the recorded decision counts."""
    arn = _manual(stack, "scenario/forged")
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    sfn = stack.client("stepfunctions")
    scheduled = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"] == "TaskScheduled"]
    token = json.loads(scheduled[-1]["taskScheduledEventDetails"]["parameters"])["Payload"]["taskToken"]
    forged = {"approvalId": link.rsplit("/", 1)[1], "decision": "approved", "reviewer": "not a reviewer"}
    sfn.send_task_success(taskToken=token, output=json.dumps(forged))
    view = pipeline.finish(stack, arn)
    assert view.error == "ApprovalNotRecorded" and "nothing was deployed" in view.cause
    assert pipeline.path(view)[len(TO_REVIEW) :][:3] == [*APPROVED, "Approval not on record"]
    assert pipeline.outcomes_mailed(stack) == ["review-requested", "failed"]
    page = requests.get(link, timeout=10)
    assert page.status_code == 410 and "no longer waits" in page.text
    _unchanged(stack, state)


def test_unanswered_review_expires_and_the_link_says_so(stack, state) -> None:
    arn = _manual(stack, "scenario/expired", approvalTimeoutSeconds=2)
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*TO_REVIEW, "Review expired", *SUCCESS_TAIL]
    assert pipeline.output(stack, arn)["outcome"] == "expired"
    assert pipeline.outcomes_mailed(stack) == ["review-requested", "expired"]
    page = requests.get(link, timeout=10)
    assert page.status_code == 410 and "expired" in page.text
    _late_outcome_is_refused(stack, link)
    _unchanged(stack, state)


def test_training_script_failure_is_reported_with_the_sagemaker_reason(stack, state) -> None:
    arn = _manual(stack, "scenario/bad-hyperparameter", hyperparameters={"n_estimators": 0})
    view = pipeline.finish(stack, arn)
    assert view.status == "FAILED" and view.error == "SageMaker.TrainingJobFailed"
    assert "AlgorithmError" in view.cause and "n_estimators must be at least 1" in view.cause
    assert pipeline.path(view) == [*TRAINED, *FAILURE_TAIL]
    assert pipeline.outcomes_mailed(stack) == ["failed"]
    _unchanged(stack, state)


def test_transient_capacity_error_on_training_is_retried_then_succeeds(stack, state) -> None:
    # The mock config's TrainingCapacityRetry case: the first CreateTrainingJob hits the account's
    # instance limit, the Retry's second attempt trains.
    arn = pipeline.start_test_case(
        stack,
        "TrainingCapacityRetry",
        {"rawDataUri": stack.retrain_data, "dataVersion": "scenario/capacity", "minImprovement": 0.5},
    )
    view = pipeline.finish(stack, arn)
    training = view.by_name()["Train candidate model"]
    assert training.retried == ["SageMaker.ResourceLimitExceeded"] and training.error is None
    assert view.status == "SUCCEEDED"
    assert pipeline.path(view) == [*HEAD, "Not promoted", *SUCCESS_TAIL]
    _unchanged(stack, state)


def test_malformed_raw_csv_fails_the_data_preparation_with_a_clear_cause(stack, state) -> None:
    bad = pipeline.upload(stack, "manual/iris-bad.csv", pipeline.iris(extra_lines=["5.0,oops,1.4,0.2,setosa"] * 30))
    arn = pipeline.start(stack, {"rawDataUri": bad, "dataVersion": "scenario/malformed"})
    view = pipeline.finish(stack, arn)
    assert view.status == "FAILED" and view.error == "Glue.JobRunFailed"
    lead = "Preparing the data failed: 30 of 180 rows (16.7%) are malformed, more than the allowed 5.0%"
    assert view.cause.startswith(lead)  # the sentence first, the Glue job run's JSON after it
    assert pipeline.outcomes_mailed(stack) == ["failed"]
    assert stack.mail[-1]["Message"].startswith(lead)
    assert pipeline.path(view) == [*TRAINED[:4], *FAILURE_TAIL]
    _unchanged(stack, state)


def test_labels_quoted_with_commas_train_score_and_reach_review_with_the_schema_change_named(stack, state) -> None:
    # "Iris, setosa" and friends: the delimiter inside quotes must survive ETL, training, the batch transform,
    # the evaluation and the email. Production knows other class names, so it cannot be compared.
    text = (ROOT / "tests" / "data" / "messy" / "quoted_label_with_comma.csv").read_text()
    raw = pipeline.upload(stack, "manual/quoted-labels.csv", text)
    arn = pipeline.start(stack, {"rawDataUri": raw, "dataVersion": "scenario/quoted-labels"})
    email = pipeline.review_email(stack)["Message"]
    assert "was not compared because it predicts none of this data's classes" in email
    assert "new classes Iris, setosa, Iris, versicolor, Iris, virginica" in email
    assert float(email.split("test-set accuracy", 1)[1].split()[0]) >= 0.9
    assert actions.decide(actions.review_link(email), "reject", reviewer="scenario test").status_code == 200
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == [*TO_REVIEW, "Model rejected", *SUCCESS_TAIL]
    evaluation = _evaluation(stack, arn)
    assert set(evaluation["classes"]) == {"Iris, setosa", "Iris, versicolor", "Iris, virginica"}
    assert evaluation["candidate"]["accuracy"] >= 0.9
    _unchanged(stack, state)


def test_a_label_column_spelt_differently_fails_with_the_closest_header_suggested(stack, state) -> None:
    text = pipeline.iris().replace(",label\n", ",Label\n", 1)
    raw = pipeline.upload(stack, "manual/iris-capitalised.csv", text)
    arn = pipeline.start(stack, {"rawDataUri": raw, "dataVersion": "scenario/label-misspelt"})
    view = pipeline.finish(stack, arn)
    assert view.status == "FAILED" and view.error == "Glue.JobRunFailed"
    assert (
        "The label column 'label' is not in the header of iris-capitalised.csv; did you mean 'Label'? Rename that "
        "column to 'label', or set the LabelColumn parameter to 'Label'." in view.cause
    )
    assert pipeline.path(view) == [*HEAD[:4], *FAILURE_TAIL]
    _unchanged(stack, state)


def test_malformed_execution_input_fails_at_the_first_state_naming_the_field(stack, state) -> None:
    arn = pipeline.start(stack, {"accuracyThreshold": "high"})
    view = pipeline.finish(stack, arn)
    assert pipeline.path(view) == pipeline.INPUT_REFUSED
    assert view.error == "InvalidInput" and "accuracyThreshold: must be a number" in view.cause
    assert pipeline.outcomes_mailed(stack) == ["failed"]
    _unchanged(stack, state)


def test_the_same_new_data_event_delivered_twice_is_processed_once(stack, state) -> None:
    event = {"trigger": "new-data", "bucket": stack.outputs["DataBucketName"], "key": "raw/iris-quarter.csv",
             "etag": "d41d8cd98f00b204e9800998ecf8427e", "minImprovement": 0.5}  # fmt: skip
    runs = [pipeline.start(stack, event) for _ in range(2)]
    views = [pipeline.finish(stack, arn) for arn in runs]
    outcomes = sorted(pipeline.output(stack, arn)["outcome"] for arn in runs)
    assert outcomes == ["duplicate", "not-promoted"]
    duplicate = next(
        v for v, arn in zip(views, runs, strict=True) if pipeline.output(stack, arn)["outcome"] == "duplicate"
    )
    assert pipeline.path(duplicate) == ["Check run input", "Claim data version", "Skip duplicate data",
                                        "Report outcome", "Run finished"]  # fmt: skip


def test_two_runs_at_once_never_deploy_concurrently(stack, state) -> None:
    first = _manual(stack, "scenario/concurrent-a", minImprovement=0.5)
    pipeline.wait_for_state(stack, first, "Prepare data")
    second = _manual(stack, "scenario/concurrent-b")
    view = pipeline.finish(stack, second)
    assert pipeline.path(view) == [
        "Check run input", "Claim data version", "Take pipeline lock", "Give back data claim", "Skip busy pipeline",
        "Report outcome", "Run finished",
    ]  # fmt: skip
    result = pipeline.output(stack, second)
    assert result["outcome"] == "busy" and "Another run holds the pipeline lock" in result["reason"]
    assert pipeline.finish(stack, first).status == "SUCCEEDED"
    assert pipeline.output(stack, first)["outcome"] == "not-promoted"
    # The busy run gave its data version back, so the same data can run later.
    retry = _manual(stack, "scenario/concurrent-b", minImprovement=0.5)
    pipeline.finish(stack, retry)
    assert pipeline.output(stack, retry)["outcome"] == "not-promoted"


def test_failed_endpoint_update_is_a_failure_and_the_registry_names_the_serving_model(stack, state) -> None:
    serving = state["registry"][("PRODUCTION", "CURRENT")]["modelName"]
    stack.sagemaker.fail_next_deployment(stack.outputs["EndpointName"], "the new model failed its health check")
    arn = _manual(stack, "scenario/rollback")
    _review(stack, "approve")
    view = pipeline.finish(stack, arn)
    assert view.status == "FAILED" and view.error == "DeploymentFailed"
    assert f"serving config {serving}" in view.cause
    assert pipeline.path(view)[-7:] == ["Is the endpoint live?", "Deployment did not go live", *FAILURE_TAIL]
    _unchanged(stack, state)
    assert "rolled back" in pipeline.endpoint(stack)["FailureReason"]
    assert actions.predict(stack.outputs["PredictUrl"], stack.api_key, SAMPLE).status_code == 200


def test_concurrent_predictions_survive_an_endpoint_update(stack, state) -> None:
    """Traffic moves to the new model without dropping requests in flight."""
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, SAMPLE)
            if reply.status_code != 200:
                failures.append(reply.status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        arn = _manual(stack, "scenario/update-under-load")
        _review(stack, "approve")
        assert pipeline.finish(stack, arn).status == "SUCCEEDED"
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert pipeline.output(stack, arn)["outcome"] == "deployed"


def test_every_call_the_runs_made_was_allowed_by_the_templates_own_policies(stack) -> None:
    """The access report of all the runs above: each principal had what it used, and nothing was guessed."""
    report = stack.access.report()
    assert [r for r in report if not r["allowed"]] == []
    assert stack.access.unsupported == set()
    used = {r["action"] for r in report}
    assert {
        "lambda:InvokeFunction", "dynamodb:PutItem", "sns:Publish", "glue:StartJobRun", "iam:PassRole",
        "sagemaker:CreateTrainingJob", "events:PutRule", "ecr:BatchGetImage", "s3:GetObject", "s3:PutObject",
        "states:SendTaskSuccess", "states:StartExecution", "sagemaker:InvokeEndpoint",
    } <= used  # fmt: skip
    roles = {r["principal"].split(":role/")[-1].split("-")[-2] for r in report if ":role/" in r["principal"]}
    assert {"MlopsStateMachineRole", "GlueJobRole", "TrainingRole", "ScoringRole", "ServingRole",
            "AccuracyGateFunctionRole", "ApprovalApiFunctionRole", "PredictFunctionRole",
            "NewRawDataRuleRole"} <= roles  # fmt: skip


def test_every_response_the_local_providers_serve_has_botocores_output_shape(stack) -> None:
    """Walks every operation the local providers answer, after the runs above left jobs, models and runs."""
    sm, glue = stack.client("sagemaker"), stack.client("glue")
    training = sm.list_training_jobs(SortBy="CreationTime")["TrainingJobSummaries"][0]["TrainingJobName"]
    described = sm.describe_training_job(TrainingJobName=training)
    fields = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
              "StoppingCondition", "HyperParameters")  # fmt: skip
    sm.create_training_job(TrainingJobName="mlops-shape-probe", **{k: described[k] for k in fields})
    sm.stop_training_job(TrainingJobName="mlops-shape-probe")
    transform = sm.list_transform_jobs()["TransformJobSummaries"][0]["TransformJobName"]
    described = sm.describe_transform_job(TransformJobName=transform)
    fields = ("ModelName", "TransformInput", "TransformOutput", "TransformResources")
    sm.create_transform_job(TransformJobName="mlops-shape-probe", **{k: described[k] for k in fields})
    sm.stop_transform_job(TransformJobName="mlops-shape-probe")
    processing = sm.list_processing_jobs()["ProcessingJobSummaries"][0]["ProcessingJobName"]
    described = sm.describe_processing_job(ProcessingJobName=processing)
    fields = ("ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources", "AppSpecification", "RoleArn")
    sm.create_processing_job(ProcessingJobName="mlops-shape-probe", **{k: described[k] for k in fields})
    sm.stop_processing_job(ProcessingJobName="mlops-shape-probe")
    model = sm.list_models()["Models"][0]["ModelName"]
    spec = sm.describe_model(ModelName=model)
    sm.create_model(ModelName="mlops-shape-probe", PrimaryContainer=spec["PrimaryContainer"],
                    ExecutionRoleArn=spec["ExecutionRoleArn"])  # fmt: skip
    sm.add_tags(ResourceArn=spec["ModelArn"], Tags=[{"Key": "probe", "Value": "shape"}])
    sm.list_tags(ResourceArn=spec["ModelArn"])
    config = sm.list_endpoint_configs()["EndpointConfigs"][0]["EndpointConfigName"]
    variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    sm.create_endpoint_config(EndpointConfigName="mlops-shape-probe", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="mlops-shape-probe", EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="mlops-shape-probe", WaiterConfig={"Delay": 1})
    sm.update_endpoint(EndpointName="mlops-shape-probe", EndpointConfigName="mlops-shape-probe")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="mlops-shape-probe", WaiterConfig={"Delay": 1})
    sm.list_endpoints()
    sm.delete_endpoint(EndpointName="mlops-shape-probe")
    sm.delete_endpoint_config(EndpointConfigName="mlops-shape-probe")
    sm.delete_model(ModelName="mlops-shape-probe")
    run = glue.get_job_runs(JobName="mlops-prepare-data")["JobRuns"][0]
    glue.get_job_run(JobName="mlops-prepare-data", RunId=run["Id"])
    stack.client("cloudformation").describe_stacks(StackName=stack.stack_name)
    stack.client("stepfunctions").describe_state_machine_for_execution(
        executionArn=pipeline.start(stack, {"bogus": True})
    )

    served = dict(stack.gateway.served)
    errors = [f"{service}:{operation}: {error}" for (service, operation), response in served.items()
              for error in response_errors(service, operation, *response)]  # fmt: skip
    assert errors == []
    walked = {("sagemaker", api[:1].upper() + api[1:]) for api in stack.sagemaker.operations()} | {
        ("glue", "GetJobRun"), ("glue", "GetJobRuns"), ("cloudformation", "DescribeStacks"),
        ("lambda", "Invoke"), ("sagemaker-runtime", "InvokeEndpoint"), ("stepfunctions", "SendTaskSuccess"),
        ("stepfunctions", "SendTaskFailure"), ("stepfunctions", "DescribeStateMachine"),
        ("stepfunctions", "DescribeStateMachineForExecution"),
    }  # fmt: skip
    assert walked - set(served) == set()
