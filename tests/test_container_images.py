"""A SageMaker job whose container image is not script mode fails at once without Docker, saying why and what
to do instead (mock the state), rather than running something else or waiting forever."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from asl import ROOT

from local_runtime.sagemaker import containers
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment


@pytest.fixture(autouse=True)
def without_docker(monkeypatch) -> None:
    """As on a machine without Docker, whatever this one has (the jobs run in this process)."""
    monkeypatch.setattr(containers, "docker", lambda: None)


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides=PROJECT_PARAMETERS) as local:
        yield local


def _image(stack: LocalDeployment) -> str:
    definition = json.loads(
        stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
    )
    return definition["States"]["Train candidate model"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]


def _ended(describe: Any, status_key: str, timeout: float = 30) -> dict[str, Any]:
    started = time.monotonic()
    while (described := describe())[status_key] == "InProgress":
        assert time.monotonic() - started < timeout, "the job did not end"
        time.sleep(0.2)
    return described


def test_a_training_job_without_script_mode_fails_fast_and_points_to_mocking(stack) -> None:
    sagemaker = stack.client("sagemaker")
    image = _image(stack)
    sagemaker.create_training_job(
        TrainingJobName="own-container",
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=stack.role_arn("TrainingRole"),
        HyperParameters={"epochs": "3"},
        OutputDataConfig={"S3OutputPath": "s3://nowhere/model/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    started = time.monotonic()
    job = _ended(lambda: sagemaker.describe_training_job(TrainingJobName="own-container"), "TrainingJobStatus")
    assert time.monotonic() - started < 10
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: training job own-container uses the container image")
    assert image in reason and "Docker" in reason and "MockConfigFile" in reason


def test_a_processing_job_whose_entrypoint_is_not_python_fails_fast_and_points_to_mocking(stack) -> None:
    sagemaker = stack.client("sagemaker")
    image = _image(stack)
    sagemaker.create_processing_job(
        ProcessingJobName="own-processing-container",
        AppSpecification={"ImageUri": image, "ContainerEntrypoint": ["/usr/local/bin/process"]},
        RoleArn=stack.role_arn("EvaluationRole"),
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
    )
    job = _ended(
        lambda: sagemaker.describe_processing_job(ProcessingJobName="own-processing-container"),
        "ProcessingJobStatus",
    )
    assert job["ProcessingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: processing job own-processing-container uses the container image")
    assert "Docker" in reason and "MockConfigFile" in reason
