"""One-host and two-host training side by side: the same XGBoost job on the same prepared rows.

The rows are synthetic (scikit-learn's make_classification, 3 classes), written as the ETL writes them:
``train/`` in two files (one per host when sharded), ``validation/`` and ``schema/``. Each job is
created through the local SageMaker with the stack's training role and published code, as the workflow
creates it. Locally both hosts share this machine's cores (each gets half), so a second host adds
coordination and no compute: on 2 cores the honest figure is the cost of going distributed, not a
speed-up. On SageMaker each host brings its own instance.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
from report import say
from sklearn.datasets import make_classification

from local_runtime import actions
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

ROWS = 200_000
FEATURES = 20
HYPERPARAMETERS = {"model": "xgboost", "n_estimators": "100", "max_depth": "6"}


def _csv(labels: np.ndarray, features: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([labels, features]), delimiter=",", fmt="%.6g")
    return buffer.getvalue().encode()


def upload_prepared_rows(stack: LocalDeployment, rows: int) -> str:
    x, y = make_classification(
        n_samples=rows, n_features=FEATURES, n_informative=10, n_classes=3, random_state=7, class_sep=0.8
    )
    cut = int(rows * 0.85)
    bucket = stack.outputs["ArtifactsBucketName"]
    prefix = "runs/bench-distributed-training/data"
    s3 = stack.client("s3")
    half = cut // 2
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/part-00000.csv", Body=_csv(y[:half], x[:half]))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/part-00001.csv", Body=_csv(y[half:cut], x[half:cut]))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/validation/part-00000.csv", Body=_csv(y[cut:], x[cut:]))
    schema = {
        "format": "sfn-mlops/schema-1",
        "label": {"name": "label", "type": "integer", "classes": [0, 1, 2]},
        "features": [{"name": f"x{i}", "type": "number"} for i in range(FEATURES)],
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}/schema/schema.json", Body=json.dumps(schema).encode())
    return f"s3://{bucket}/{prefix}/"


def train(stack: LocalDeployment, data_uri: str, hosts: int) -> dict[str, Any]:
    sagemaker = stack.client("sagemaker")
    name = f"bench-{hosts}-hosts-{int(time.time())}"
    started = time.perf_counter()
    sagemaker.create_training_job(
        **actions.training_job_request(stack, name, data_uri, hosts=hosts, hyperparameters=HYPERPARAMETERS)
    )
    while (job := sagemaker.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] == "InProgress":
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job.get('FailureReason')}")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    return {"hosts": hosts, "seconds": round(wall, 2), "validation_accuracy": metrics["validation:accuracy"]}


def main(stack: LocalDeployment, rows: int = ROWS) -> dict[str, Any]:
    data_uri = upload_prepared_rows(stack, rows)
    runs = [train(stack, data_uri, hosts) for hosts in (1, 2)]
    say(f"XGBoost, {rows:,} rows x {FEATURES} features, 100 rounds; hosts share this machine's cores")
    say(f"{'hosts':>5} {'seconds':>9} {'validation accuracy':>20}")
    for run in runs:
        say(f"{run['hosts']:>5} {run['seconds']:>9.2f} {run['validation_accuracy']:>20.4f}")
    return {"rows": rows, "features": FEATURES, "runs": runs}


if __name__ == "__main__":
    from local_runtime.cli import ROOT, service_logs

    with (
        service_logs(ROOT / "bench" / "results" / "local-aws.log"),
        LocalDeployment(ROOT, overrides=PROJECT_PARAMETERS) as local,
    ):
        main(local)
