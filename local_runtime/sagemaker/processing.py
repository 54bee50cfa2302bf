"""Processing jobs: the container's entrypoint as a process under SageMaker's processing contract.

Inputs are copied from S3 to their ``LocalPath`` before the entrypoint starts, outputs are uploaded from
theirs when it ends successfully (``S3UploadMode: EndOfJob``), and ``/opt/ml/config`` holds
``processingjobconfig.json`` and ``resourceconfig.json``. Locally ``/opt/ml`` is a folder of the job's own,
so container paths in the entrypoint and arguments are mapped onto it, and ``python``/``python3`` is this
interpreter, which has the packages of the scikit-learn image.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_runtime import s3files
from local_runtime.errors import ServiceError
from local_runtime.sagemaker import containers
from local_runtime.sagemaker.common import CONTAINER_PYTHON, Job, resource_arn
from local_runtime.sagemaker.jobs import Jobs

CONTAINER_ROOT = "/opt/ml/"
INTERPRETERS = {"python", "python3"}


class ProcessingJobs(Jobs):
    """Processing for ``LocalSageMaker``, which provides the S3 client and the image pull of the job's role."""

    workdir: Path
    _s3: Callable[[str], Any]
    _pull: Callable[[str, str, str], None]

    def op_CreateProcessingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        for entry in [*request.get("ProcessingInputs", []), *_outputs(request)]:
            local = (entry.get("S3Input") or entry.get("S3Output") or {}).get("LocalPath", "")
            if not local.startswith("/opt/ml/processing/"):
                raise ServiceError("ValidationException", f"LocalPath {local!r} must be under /opt/ml/processing/")
        return {"ProcessingJobArn": self._start_job("processing", request, self._run_processing)}

    def op_DescribeProcessingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.describe_processing(self._job(request["ProcessingJobName"], "processing"))

    def op_StopProcessingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stop_job(self._job(request["ProcessingJobName"], "processing"), refuse_finished=True)
        return {}

    def op_ListProcessingJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ProcessingJobSummaries": self._job_summaries("processing", request)}

    def _run_processing(self, job: Job) -> None:
        request = job.request
        role = request["RoleArn"]
        app = request["AppSpecification"]
        self._pull(role, app["ImageUri"], job.arn)
        work = self.workdir / "processing" / job.name
        root = work / "opt" / "ml"

        def local(container_path: str) -> Path:
            return root / container_path.removeprefix(CONTAINER_ROOT)

        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "output").mkdir(parents=True, exist_ok=True)
        (root / "config" / "processingjobconfig.json").write_text(json.dumps(request, default=str))
        (root / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
        )
        for entry in request.get("ProcessingInputs", []):
            source = entry["S3Input"]
            target = local(source["LocalPath"])
            target.mkdir(parents=True, exist_ok=True)
            if not s3files.download(self._s3(role), source["S3Uri"], target):
                raise RuntimeError(f"ClientError: No S3 objects found under S3 URL {source['S3Uri']!r}")
        for output in _outputs(request):
            local(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)

        def mapped(token: str) -> str:
            return str(local(token)) if token.startswith(CONTAINER_ROOT) else token

        command = [mapped(t) for t in [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]]
        max_runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        if not command or command[0] not in INTERPRETERS:
            # Not a Python script: only the image itself can run it.
            if not containers.docker():
                job.failure = containers.needs_docker(
                    f"processing job {job.name}", app["ImageUri"], "no ContainerEntrypoint that runs python"
                )
                raise RuntimeError(job.failure)
            code = containers.run_image(app["ImageUri"], root, app.get("ContainerArguments", []),
                                        request.get("Environment", {}), work / "processing.log", max_runtime,
                                        entrypoint=app.get("ContainerEntrypoint"))  # fmt: skip
            if code != 0:
                job.status, job.failure = "Failed", f"AlgorithmError: the container exited with code {code}"
                return
            self._upload_outputs(job, root)
            return
        env = {**os.environ, **request.get("Environment", {})}
        log_path = work / "processing.log"
        with log_path.open("wb") as log:
            try:
                process = CONTAINER_PYTHON.popen(command[1:], work, env, log, subprocess.STDOUT)
            except ValueError as refused:  # an interpreter option that a forked child cannot honour
                job.failure = f"ValidationException: {refused}"
                raise RuntimeError(job.failure) from None
            job.processes = [process]
            try:
                code = process.wait(timeout=max_runtime)
            except subprocess.TimeoutExpired:
                process.kill()
                job.status = "Failed"
                job.failure = f"MaxRuntimeExceeded: processing ran longer than {max_runtime} seconds"
                return
        if job.status != "InProgress":
            return
        if code != 0:
            message = root / "output" / "message"
            reason = message.read_text().strip() if message.exists() else log_path.read_text(errors="replace")[-800:]
            job.status, job.failure = "Failed", f"AlgorithmError: {reason.strip()}, exit code: {code}"
            job.exit_message = reason.strip()[:1024]
            return
        self._upload_outputs(job, root)

    def _upload_outputs(self, job: Job, root: Path) -> None:
        """EndOfJob upload of each output's LocalPath (under the job's /opt/ml folder) to its S3Uri."""
        for output in _outputs(job.request):
            local = root / output["S3Output"]["LocalPath"].removeprefix(CONTAINER_ROOT)
            s3files.upload(self._s3(job.request["RoleArn"]), local, output["S3Output"]["S3Uri"])

    def describe_processing(self, job: Job) -> dict[str, Any]:
        request = job.request
        described = {
            key: request[key]
            for key in (
                "ProcessingJobName",
                "ProcessingInputs",
                "ProcessingOutputConfig",
                "ProcessingResources",
                "StoppingCondition",
                "AppSpecification",
                "Environment",
                "NetworkConfig",
                "RoleArn",
            )
            if key in request
        }
        described.update(
            ProcessingJobArn=resource_arn("processing-job", job.name),
            ProcessingJobStatus=job.status,
            CreationTime=job.created,
            ProcessingStartTime=job.created,
            LastModifiedTime=job.ended or time.time(),
        )
        if job.ended:
            described["ProcessingEndTime"] = job.ended
        if job.failure:
            described["FailureReason"] = job.failure
        if job.exit_message:
            described["ExitMessage"] = job.exit_message
        return described


def _outputs(request: dict[str, Any]) -> list[dict[str, Any]]:
    return request.get("ProcessingOutputConfig", {}).get("Outputs", [])
