"""Training on two instances: SageMaker's multi-host contract in the local runtime, and train.py's
data-parallel XGBoost on it.

One stack with TrainingInstanceCount 2. A full run trains on two hosts, each on its own shard of the
training rows, and deploys; a hand-made job shows that one host failing fails the whole job with that
host's reason.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pipeline
import pytest
from asl import ROOT

from local_runtime import actions, s3files
from local_runtime.sagemaker.training import shard, unmet_requirements
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

# How far the two-host model's validation accuracy may fall from one host's on the same rows. XGBoost's
# collective sums the hosts' gradient histograms, so the trees match up to the quantile sketch, which
# each host builds from its own rows and the collective merges.
ACCURACY_TOLERANCE = 0.05
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(
        ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1", "TrainingInstanceCount": "2"}
    ) as local:
        yield local


@pytest.fixture(scope="module")
def deployed_run(stack) -> dict:
    """A run on all of iris that trains on two hosts, is approved and goes live."""
    data = pipeline.upload(stack, "manual/iris.csv", pipeline.iris())
    execution_arn = pipeline.start(stack, {"rawDataUri": data, "dataVersion": "two-hosts", "accuracyThreshold": 0})
    link = actions.review_link(pipeline.review_email(stack, timeout=240)["Message"])
    assert actions.decide(link, "approve", reviewer="two-host test").status_code == 200
    view = pipeline.finish(stack, execution_arn)
    assert view.status == "SUCCEEDED", pipeline.path(view)
    jobs = stack.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1
    job = stack.client("sagemaker").describe_training_job(TrainingJobName=jobs[0]["TrainingJobName"])
    train = next(c for c in job["InputDataConfig"] if c["ChannelName"] == "train")
    return {"job": job, "prepared": train["DataSource"]["S3DataSource"]["S3Uri"].removesuffix("train/")}


def _host_logs(stack, job_name: str) -> dict[str, str]:
    logs = stack.client("logs")
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    return {
        s["logStreamName"]: "\n".join(
            e["message"]
            for e in logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=s["logStreamName"])["events"]
        )
        for s in streams
    }


def _model_files(stack, job: dict) -> dict[str, bytes]:
    bucket, key = s3files.split_uri(job["ModelArtifacts"]["S3ModelArtifacts"])
    body = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_two_hosts_train_and_deploy_one_model(stack, deployed_run) -> None:
    job = deployed_run["job"]
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    files = _model_files(stack, job)
    assert sorted(files) == ["evaluation.json", "model.joblib", "schema.json"]
    report = json.loads(files["evaluation.json"])
    assert report["model"] == "xgboost" and report["hosts"] == 2
    reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "6.3,3.3,6.0,2.5\n5.1,3.5,1.4,0.2")
    assert reply.json() == {"predictions": ["virginica", "setosa"]}


def test_each_host_trains_on_its_own_shard_of_the_rows(stack, deployed_run) -> None:
    job = deployed_run["job"]
    prepared = deployed_run["prepared"]
    train_objects = s3files.keys_under(stack.client("s3"), f"{prepared}train/")
    assert len(train_objects) == 2, train_objects  # one file per host
    logs = _host_logs(stack, job["TrainingJobName"])
    assert sorted(name.split("/")[-1].rsplit("-", 1)[0] for name in logs) == ["algo-1", "algo-2"]
    first = next(text for name, text in logs.items() if "/algo-1-" in name)
    second = next(text for name, text in logs.items() if "/algo-2-" in name)
    report = json.loads(_model_files(stack, job)["evaluation.json"])
    total, on_first = report["train_rows"], report["host_train_rows"]
    assert f"host trained on {total - on_first} of {total} training rows" in second
    assert 0 < on_first < total
    # Only the first host reports the metrics the job's MetricDefinitions read.
    assert "validation_accuracy=" in first and "validation_accuracy=" not in second


def test_two_hosts_are_as_accurate_as_one_on_the_same_rows(stack, deployed_run, tmp_path) -> None:
    job = deployed_run["job"]
    prepared = deployed_run["prepared"]
    for channel in ("train", "validation", "schema"):
        s3files.download(stack.client("s3"), f"{prepared}{channel}/", tmp_path / channel)
    env = {
        **os.environ,
        **{f"SM_CHANNEL_{c.upper()}": str(tmp_path / c) for c in ("train", "validation", "schema")},
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
    }
    one_host = subprocess.run(
        [sys.executable, str(ROOT / "model" / "train.py"), "--model", "xgboost"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    single = json.loads((tmp_path / "model" / "evaluation.json").read_text())
    assert (
        single["hosts"] == 1
        and single["train_rows"] == json.loads(_model_files(stack, job)["evaluation.json"])["train_rows"]
    ), one_host.stdout
    two = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["validation:accuracy"]
    measured = {"one_host": single["validation_accuracy"], "two_hosts": two, "tolerance": ACCURACY_TOLERANCE}
    (ROOT / "test-output").mkdir(exist_ok=True)
    (ROOT / "test-output" / "distributed-training-accuracy.json").write_text(json.dumps(measured, indent=2))
    assert abs(two - single["validation_accuracy"]) <= ACCURACY_TOLERANCE, measured


def test_a_host_that_fails_fails_the_job_with_that_hosts_reason(stack, deployed_run) -> None:
    prepared = deployed_run["prepared"]
    s3 = stack.client("s3")
    bucket, prefix = s3files.split_uri(prepared)
    broken = f"s3://{bucket}/runs/broken-shard/data/"
    for channel in ("validation", "schema"):
        for key in s3files.keys_under(s3, f"{prepared}{channel}/"):
            s3.copy_object(
                Bucket=bucket, Key=key.replace(prefix, "runs/broken-shard/data/"), CopySource=f"{bucket}/{key}"
            )
    # Two train shards: by key order the first goes to algo-1, the second (a word where a number must be) to algo-2.
    s3.put_object(Bucket=bucket, Key="runs/broken-shard/data/train/part-0.csv", Body=b"0,5.1,3.5,1.4,0.2\n")
    s3.put_object(Bucket=bucket, Key="runs/broken-shard/data/train/part-1.csv", Body=b"1,seven,3.2,4.7,1.4\n")
    sagemaker = stack.client("sagemaker")
    request = actions.training_job_request(stack, "broken-shard", broken, hosts=2, hyperparameters={"model": "xgboost"})
    sagemaker.create_training_job(**request)
    started = time.monotonic()
    while (job := sagemaker.describe_training_job(TrainingJobName="broken-shard"))["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() - started < 120, "the job did not end"
        time.sleep(0.5)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ValueError: part-1.csv:")
    assert "the channel must hold numbers only" in job["FailureReason"]
    logs = _host_logs(stack, "broken-shard")
    assert sorted(name.split("/")[-1].rsplit("-", 1)[0] for name in logs) == ["algo-1", "algo-2"]
    assert "training failed" in next(text for name, text in logs.items() if "/algo-2-" in name)
    assert "ModelArtifacts" not in job or not job["ModelArtifacts"]["S3ModelArtifacts"]


def test_sharding_by_s3_key_hands_each_host_every_nth_object() -> None:
    keys = [f"train/part-{i}.csv" for i in (3, 0, 4, 1, 2)]
    assert shard(keys, 0, 2) == ["train/part-0.csv", "train/part-2.csv", "train/part-4.csv"]
    assert shard(keys, 1, 2) == ["train/part-1.csv", "train/part-3.csv"]
    assert shard(keys, 2, 3) == ["train/part-2.csv"]


def test_a_requirement_this_python_lacks_is_named_before_training(tmp_path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("xgboost-cpu==0.1  # too old\nscikit-learn\nno-such-package-for-sfn-mlops\n")
    unmet = unmet_requirements(requirements)
    assert unmet[0].startswith("xgboost-cpu==0.1 (installed: ") and unmet[1:] == ["no-such-package-for-sfn-mlops"]
    assert unmet_requirements(ROOT / "model" / "container-requirements.txt") == []
