"""Check run input: validation and normalisation of the execution input."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from handlers import LambdaContext, load_handler, sample_event
from hypothesis import given
from hypothesis import strategies as st
from run_config import InvalidInput, build_run_config

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
EVENT = sample_event("validate_input")


def build(run_input, **defaults):
    return build_run_config(run_input, EVENT["execution"], {**EVENT["defaults"], **defaults})


def test_new_data_event_names_the_object_and_its_content_as_the_data_version() -> None:
    run = build(EVENT["input"])
    assert run["rawDataUri"] == "s3://sfn-mlops-databucket-1a2b3c/raw/iris-2026-11-23.csv"
    assert run["dataVersion"].endswith("@9b2cf535f27731c974343645a3985328")
    assert run["preparedDataUri"].startswith("s3://sfn-mlops-artifactsbucket-4d5e6f/runs/")
    assert run["hyperparameters"]["sagemaker_program"] == "train.py"
    assert run["endpoint"]["productionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_scheduled_run_trains_on_the_whole_raw_prefix_with_a_unique_version() -> None:
    run = build({"trigger": "schedule"})
    assert run["rawDataUri"] == "s3://sfn-mlops-databucket-1a2b3c/raw/"
    assert run["dataVersion"] == f"schedule/{EVENT['execution']['name']}"


def test_defaults_come_from_the_stack_and_input_overrides_them() -> None:
    assert build({})["accuracyThreshold"] == 0.9
    run = build({"accuracyThreshold": 0.75, "approvalTimeoutSeconds": 5})
    assert run["accuracyThreshold"] == 0.75
    assert run["approvalTimeoutSeconds"] == 5


@pytest.mark.parametrize(
    ("run_input", "field"),
    [
        ([1, 2], "input"),
        ({"trigger": "cron"}, "trigger"),
        ({"treshold": 0.9}, "treshold"),
        ({"accuracyThreshold": "high"}, "accuracyThreshold"),
        ({"accuracyThreshold": 1.5}, "accuracyThreshold"),
        ({"accuracyThreshold": True}, "accuracyThreshold"),
        ({"approvalTimeoutSeconds": 2.5}, "approvalTimeoutSeconds"),
        ({"approvalTimeoutSeconds": 0}, "approvalTimeoutSeconds"),
        ({"rawDataUri": "s3://someone-elses-bucket/data.csv"}, "rawDataUri"),
        ({"dataVersion": ""}, "dataVersion"),
        ({"hyperparameters": ["n_estimators", 10]}, "hyperparameters"),
        ({"hyperparameters": {"sagemaker_program": "evil.py"}}, "hyperparameters.sagemaker_program"),
        ({"hyperparameters": {"n_estimators": {"nested": 1}}}, "hyperparameters.n_estimators"),
        ({"trigger": "new-data", "bucket": "sfn-mlops-databucket-1a2b3c", "key": "raw/a.csv"}, "etag"),
        ({"trigger": "new-data", "bucket": "other", "key": "raw/a.csv", "etag": "x"}, "bucket"),
        (
            {"trigger": "new-data", "bucket": "sfn-mlops-databucket-1a2b3c", "key": "elsewhere/a.csv", "etag": "x"},
            "key",
        ),
    ],
)
def test_malformed_input_is_rejected_naming_the_field(run_input, field) -> None:
    with pytest.raises(InvalidInput) as raised:
        build(run_input)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_hyperparameters_become_strings_and_keep_a_seed() -> None:
    hp = build({"hyperparameters": {"n_estimators": 50, "model": "logistic_regression", "C": 0.5}})["hyperparameters"]
    assert hp["n_estimators"] == "50" and hp["C"] == "0.5" and hp["seed"] == "42"


def test_spot_training_sets_a_wait_limit_and_instance_endpoints_get_instances() -> None:
    run = build({}, useSpotTraining="true", endpointType="Instance", endpointInstanceCount="2")
    assert run["training"]["enableManagedSpotTraining"] is True
    assert run["training"]["stoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    variant = run["endpoint"]["productionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 2


def test_lock_outlives_the_longest_possible_run() -> None:
    run = build({})
    started = datetime.fromisoformat(EVENT["execution"]["startTime"])
    expires = datetime.fromisoformat(run["lockExpiresAt"])
    assert (expires - started).total_seconds() > 604800 + 3600


@given(st.text(min_size=1, max_size=80), st.sampled_from(["mlops", "abcdefghijkl"]))
def test_every_generated_name_is_a_valid_sagemaker_name(execution_name, name_prefix) -> None:
    defaults = {**EVENT["defaults"], "namePrefix": name_prefix}
    run = build_run_config({}, {**EVENT["execution"], "name": execution_name}, defaults)
    for model in (run["modelName"], run["scoringModelName"]):
        assert SAGEMAKER_NAME.match(model) and len(model) <= 63
    job_name = f"{run['namePrefix']}-5c6b7a8e-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
    assert SAGEMAKER_NAME.match(job_name) and len(job_name) <= 63
    assert run["namePrefix"].startswith(f"{name_prefix}-")


def test_handler_returns_the_run_config_for_the_sample_event() -> None:
    app = load_handler("validate_input")
    run = app.lambda_handler(EVENT, LambdaContext("validate-input"))
    assert run["trigger"] == "new-data"


def test_handler_raises_invalid_input_so_the_asl_sees_that_error_name() -> None:
    app = load_handler("validate_input")
    with pytest.raises(Exception) as raised:
        app.lambda_handler({**EVENT, "input": {"bogus": 1}}, LambdaContext("validate-input"))
    assert type(raised.value).__name__ == "InvalidInput"


def test_a_customer_managed_key_encrypts_every_volume_and_output_the_jobs_write() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    run = build_run_config({}, EVENT["execution"], {**EVENT["defaults"], "kmsKeyArn": key})
    assert run["training"]["resourceConfig"]["VolumeKmsKeyId"] == key
    assert run["training"]["outputDataConfig"]["KmsKeyId"] == key
    assert run["transform"]["resources"]["VolumeKmsKeyId"] == key
    assert run["transform"]["output"]["KmsKeyId"] == key
    without = build({})
    assert "VolumeKmsKeyId" not in without["training"]["resourceConfig"]
    assert "KmsKeyId" not in without["transform"]["output"]


def test_training_instance_count_reaches_the_job_and_the_train_shards() -> None:
    run = build({}, trainingInstanceCount="3")
    assert run["training"]["resourceConfig"]["InstanceCount"] == 3
    assert run["trainShards"] == "3"


def test_a_single_host_model_on_several_instances_is_refused_before_anything_runs() -> None:
    with pytest.raises(InvalidInput, match="random_forest trains on one host, and TrainingInstanceCount is 2"):
        build({"hyperparameters": {"model": "random_forest"}}, trainingInstanceCount="2")
    assert build({"hyperparameters": {"model": "xgboost"}}, trainingInstanceCount="2")["trainShards"] == "2"
