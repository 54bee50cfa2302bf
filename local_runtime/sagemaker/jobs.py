"""Training and transform jobs alike: a record per job and a thread that runs it to an end state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from local_runtime.errors import ServiceError
from local_runtime.sagemaker.common import Job, listed, resource_arn


class Jobs:
    """Job bookkeeping for ``LocalSageMaker``: ``jobs`` is keyed by (kind, name), since SageMaker keeps
    training and transform names apart."""

    jobs: dict[tuple[str, str], Job]
    _lock: threading.RLock
    _tag: Callable[[str, dict[str, Any]], None]

    def _start_job(self, kind: str, request: dict[str, Any], runner: Callable[[Job], None]) -> str:
        job = Job(kind, request)
        name = job.name
        arn = resource_arn(f"{kind}-job", name)
        with self._lock:
            if (kind, name) in self.jobs:
                raise ServiceError("ResourceInUse", f"{kind.title()} job {name} already exists")
            self.jobs[kind, name] = job
        self._tag(arn, request)
        threading.Thread(target=self._run_job, args=(job, runner), name=f"sagemaker-{name}", daemon=True).start()
        return arn

    def _run_job(self, job: Job, runner: Callable[[Job], None]) -> None:
        try:
            runner(job)
            if job.status == "InProgress":
                job.status, job.secondary = "Completed", "Completed"
        except Exception as error:
            if job.status == "InProgress":
                job.status, job.secondary = "Failed", "Failed"
                job.failure = job.failure or f"{type(error).__name__}: {error}"
        finally:
            job.ended = time.time()
            job.done.set()

    def _job(self, name: str, kind: str) -> Job:
        job = self.jobs.get((kind, name))
        if job is None:
            raise ServiceError("ValidationException", f"Requested resource not found: {kind} job {name}")
        return job

    def _stop_job(self, job: Job, refuse_finished: bool = False) -> None:
        if refuse_finished and job.status != "InProgress":
            raise ServiceError(
                "ValidationException", f"The request was rejected because the {job.kind} job is in status {job.status}."
            )
        if job.status == "InProgress":
            job.status, job.secondary = "Stopped", "Stopped"
            for process in job.processes:
                if process.poll() is None:
                    process.kill()

    def _job_summaries(self, kind: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = f"{kind.title()}Job"
        summaries = []
        for job in listed([j for j in list(self.jobs.values()) if j.kind == kind], request, lambda j: j.name):
            if request.get("StatusEquals", job.status) != job.status:
                continue
            summary = {
                f"{prefix}Name": job.name,
                f"{prefix}Arn": resource_arn(f"{kind}-job", job.name),
                "CreationTime": job.created,
                "LastModifiedTime": job.ended or job.created,
                f"{prefix}Status": job.status,
            }
            if job.ended:
                summary[f"{kind.title()}EndTime"] = job.ended
            if job.failure and kind != "training":
                summary["FailureReason"] = job.failure
            summaries.append(summary)
        return summaries
