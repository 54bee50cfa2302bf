"""Glue on localhost: ``startJobRun.sync`` runs the job's script on local Spark.

Spark here cannot read the local S3, so every ``s3://`` job argument is mirrored: objects under it
are downloaded into a scratch folder before the run, the argument points at that folder, and
whatever the script writes there is uploaded back afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_runtime import s3files
from local_runtime.access import AccessControl, AccessDenied, Check, Principal
from local_runtime.errors import ServiceError
from local_runtime.lambdas import ProviderError
from local_runtime.spark_driver import DRIVERS
from local_runtime.template import ACCOUNT, REGION


@dataclass(frozen=True)
class GlueJob:
    name: str
    script_location: str  # s3://..., where `sam package` put the script
    role_arn: str


class LocalGlue:
    """Job runs act with the job's role: the script and every s3:// argument are read and written with it."""

    def __init__(self, client_as: Callable[[str, str, str], Any], access: AccessControl, workdir: Path) -> None:
        self._client_as = client_as
        self.access = access
        self.workdir = workdir
        self.jobs: dict[str, GlueJob] = {}
        self.runs: dict[str, dict[str, Any]] = {}  # by run id, newest last

    def add_job(self, name: str, script_location: str, role_arn: str) -> None:
        self.jobs[name] = GlueJob(name, script_location, role_arn)

    def _authorize(self, name: str, caller: Principal) -> None:
        job_arn = _job_arn(name)
        for action in ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"):
            decision = self.access.check(caller, Check(action, job_arn))
            if not decision.allowed:
                raise ProviderError("Glue.AccessDeniedException", decision.message)

    def run_sync(self, request: dict[str, Any], caller: Principal | None = None) -> dict[str, Any]:
        """What ``glue:startJobRun.sync`` returns: the finished JobRun."""
        name = request["JobName"]
        if caller is not None:
            self._authorize(name, caller)
        if name not in self.jobs:
            raise ProviderError("Glue.EntityNotFoundException", f"Job {name} not found")
        job = self.jobs[name]
        run_id = f"jr_{secrets.token_hex(32)}"
        started = time.time()
        arguments = dict(request.get("Arguments", {}))
        run: dict[str, Any] = {
            "Id": run_id,
            "JobName": name,
            "Arguments": arguments,
            "StartedOn": started,
            "JobRunState": "RUNNING",
            "GlueVersion": "5.0",
            "Attempt": 0,
        }
        self.runs[run_id] = run
        try:
            # Glue takes the job's role for this job (its trust policy must allow that), then acts with it.
            self.access.assume(job.role_arn, "glue.amazonaws.com", "GlueJobRunnerSession", _job_arn(name))
            code, log_text, mirrored = self._run_script(job, run_id, arguments)
        except (ClientError, AccessDenied) as error:
            # Glue takes the job's role and reads the script and inputs with it before the driver starts.
            code, log_text, mirrored = 1, f"{type(error).__name__}: {error}", {}
        for uri, (local, downloaded) in mirrored.items():
            # Hadoop's local file system leaves .crc checksum files that S3 output would not have.
            written = {
                p
                for p in local.rglob("*")
                if p.is_file() and not p.name.startswith(".") and downloaded.get(p) != p.stat().st_mtime_ns
            }
            s3files.upload(self._s3(job), local, uri, only=written)
        run.update(
            CompletedOn=time.time(),
            ExecutionTime=max(1, round(time.time() - started)),
            JobRunState="SUCCEEDED" if code == 0 else "FAILED",
        )
        if code != 0:
            run["ErrorMessage"] = self._error_message(log_text)
            # AWS names this States.TaskFailed, a name reserved for the engine itself.
            raise ProviderError("Glue.JobRunFailed", json.dumps(run))
        return run

    def handle(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """GetJobRun and GetJobRuns for the runs the workflow made."""
        name = request.get("JobName", "")
        if name not in self.jobs:
            raise ServiceError("EntityNotFoundException", f"Job with name: {name} not found")
        runs = [run for run in reversed(self.runs.values()) if run["JobName"] == name]
        if operation == "GetJobRuns":
            return {"JobRuns": runs[: int(request.get("MaxResults", 100))]}
        run = next((run for run in runs if run["Id"] == request.get("RunId")), None)
        if run is None:
            raise ServiceError("EntityNotFoundException", f"Job Run with id: {request.get('RunId')} not found")
        return {"JobRun": run}

    def _s3(self, job: GlueJob) -> Any:
        return self._client_as("s3", job.role_arn, "GlueJobRunnerSession")

    def _run_script(
        self, job: GlueJob, run_id: str, arguments: dict[str, str]
    ) -> tuple[int, str, dict[str, tuple[Path, dict[Path, int]]]]:
        folder = self.workdir / "glue" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        bucket, key = s3files.split_uri(job.script_location)
        script = folder / "script" / key.rsplit("/", 1)[-1]
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_bytes(self._s3(job).get_object(Bucket=bucket, Key=key)["Body"].read())
        local_args, mirrored = self._mirror_arguments(job, arguments, folder / "s3")
        argv = ["--JOB_NAME", job.name, "--JOB_RUN_ID", run_id]
        for name, value in local_args.items():
            argv += [name, value]
        log_path = folder / "driver.log"
        code = DRIVERS.run(self, script, argv, dict(os.environ), log_path)
        return code, log_path.read_text(errors="replace") if log_path.exists() else "", mirrored

    def stop(self) -> None:
        DRIVERS.stop_running(self)

    def _mirror_arguments(
        self, job: GlueJob, arguments: dict[str, str], mirror: Path
    ) -> tuple[dict[str, str], dict[str, tuple[Path, dict[Path, int]]]]:
        """Maps s3:// arguments to local folders; remembers what was downloaded so only new files go back."""
        local_args, mirrored = {}, {}
        for key, value in arguments.items():
            if isinstance(value, str) and value.startswith("s3://"):
                bucket, prefix = s3files.split_uri(value)
                local = mirror / bucket / prefix
                keys = s3files.keys_under(self._s3(job), value)
                if keys == [prefix]:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    s3files.download(self._s3(job), value, local.parent)
                else:
                    local.mkdir(parents=True, exist_ok=True)
                    downloaded = s3files.download(self._s3(job), value, local)
                    mirrored[value] = (local, {p: p.stat().st_mtime_ns for p in downloaded})
                local_args[key] = str(local)
            else:
                local_args[key] = value
        return local_args, mirrored

    @staticmethod
    def _error_message(log: str) -> str:
        """The exception line of a Python traceback, as Glue reports it."""
        lines = [line for line in log.splitlines() if line.strip()]
        for line in reversed(lines):
            if not line.startswith((" ", "\t")) and ("Error" in line or "Exception" in line) and ":" in line:
                return line.strip()
        return lines[-1] if lines else "the job failed without output"


def _job_arn(name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{name}"
