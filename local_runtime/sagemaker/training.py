"""Training jobs: ``train.py`` as a process under SageMaker's script-mode training contract."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_runtime import s3files
from local_runtime.sagemaker.common import Job, resource_arn
from local_runtime.sagemaker.jobs import Jobs


class TrainingJobs(Jobs):
    """Training for ``LocalSageMaker``, which provides the S3 client and the image pull of the job's role."""

    workdir: Path
    _s3: Callable[[str], Any]
    _pull: Callable[[str, str], None]

    # training ----------------------------------------------------------------
    def op_CreateTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TrainingJobArn": self._start_job("training", request, self._run_training)}

    def op_DescribeTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.describe_training(self._job(request["TrainingJobName"], "training"))

    def op_StopTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stop_job(self._job(request["TrainingJobName"], "training"), refuse_finished=True)
        return {}

    def op_ListTrainingJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TrainingJobSummaries": self._job_summaries("training", request)}

    def _run_training(self, job: Job) -> None:
        request = job.request
        role = request["RoleArn"]
        self._pull(role, request["AlgorithmSpecification"]["TrainingImage"], job.arn)
        work = self.workdir / "training" / job.name
        model_dir, output_dir, code_dir = work / "model", work / "output", work / "code"
        for folder in (model_dir, output_dir / "data", work / "input" / "config"):
            folder.mkdir(parents=True, exist_ok=True)
        job.secondary = "Downloading"
        channels = {}
        for channel in request.get("InputDataConfig", []):
            target = work / "input" / "data" / channel["ChannelName"]
            target.mkdir(parents=True, exist_ok=True)
            s3files.download(self._s3(role), channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            channels[channel["ChannelName"]] = str(target)
        hyperparameters = {k: str(v) for k, v in request.get("HyperParameters", {}).items()}
        program = hyperparameters.get("sagemaker_program")
        submit = hyperparameters.get("sagemaker_submit_directory")
        if not program or not submit:
            raise RuntimeError("ClientError: script mode needs sagemaker_program and sagemaker_submit_directory")
        s3files.extract_tarball(self._s3(role), submit, code_dir)
        user_hps = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        (work / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        env = {
            **os.environ,
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DIR": str(output_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
            "SM_INPUT_DIR": str(work / "input"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_TRAINING_ENV": json.dumps({"job_name": job.name, "hyperparameters": user_hps}),
            **{f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()},
            **{f"SM_HP_{name.upper()}": value for name, value in user_hps.items()},
        }
        args = [item for name, value in user_hps.items() for item in (f"--{name}", value)]
        job.secondary = "Training"
        log_path = work / "training.log"
        max_runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        with log_path.open("wb") as log:
            job.process = subprocess.Popen(
                [sys.executable, program, *args], cwd=code_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                code = job.process.wait(timeout=max_runtime)
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.status, job.secondary = "Failed", "MaxRuntimeExceeded"
                job.failure = f"MaxRuntimeExceeded: training ran longer than {max_runtime} seconds"
                return
        output = log_path.read_text(errors="replace")
        job.metrics = self._metrics(request, output)
        if job.status != "InProgress":
            return
        if code != 0:
            failure_file = output_dir / "failure"
            reason = failure_file.read_text().strip() if failure_file.exists() else output.strip()[-800:]
            job.status, job.secondary = "Failed", "Failed"
            job.failure = f"AlgorithmError: {reason}, exit code: {code}"
            return
        job.secondary = "Uploading"
        archive = s3files.make_tarball(model_dir, work / "model.tar.gz")
        bucket, prefix = s3files.split_uri(request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{job.name}/output/model.tar.gz".lstrip("/")
        self._s3(role).upload_file(str(archive), bucket, key)
        job.request = {**request, "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{key}"}}

    @staticmethod
    def _metrics(request: dict[str, Any], output: str) -> list[dict[str, Any]]:
        found = []
        for definition in request.get("AlgorithmSpecification", {}).get("MetricDefinitions", []):
            matches = re.findall(definition["Regex"], output)
            if matches:
                value = matches[-1][0] if isinstance(matches[-1], tuple) else matches[-1]
                try:
                    found.append({"MetricName": definition["Name"], "Value": float(value), "Timestamp": time.time()})
                except ValueError:
                    continue
        return found

    def describe_training(self, job: Job) -> dict[str, Any]:
        request = job.request
        described = {
            key: request[key]
            for key in (
                "TrainingJobName",
                "AlgorithmSpecification",
                "HyperParameters",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
                "RoleArn",
                "EnableManagedSpotTraining",
                "ModelArtifacts",
            )
            if key in request
        }
        described.update(
            TrainingJobArn=resource_arn("training-job", job.name),
            TrainingJobStatus=job.status,
            SecondaryStatus=job.secondary,
            CreationTime=job.created,
            TrainingStartTime=job.created,
            LastModifiedTime=job.ended or time.time(),
            FinalMetricDataList=job.metrics,
        )
        described.setdefault("ModelArtifacts", {"S3ModelArtifacts": ""})
        if job.ended:
            described["TrainingEndTime"] = job.ended
            described["TrainingTimeInSeconds"] = max(1, round(job.ended - job.created))
            described["BillableTimeInSeconds"] = described["TrainingTimeInSeconds"]
        if job.failure:
            described["FailureReason"] = job.failure
        return described
