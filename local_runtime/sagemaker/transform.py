"""Batch transform jobs: the model's server per job, fed the input objects record by record."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_runtime import s3files
from local_runtime.errors import ServiceError
from local_runtime.sagemaker.common import Job, resource_arn
from local_runtime.sagemaker.hosting import ModelServer
from local_runtime.sagemaker.jobs import Jobs
from local_runtime.sagemaker.server_pool import ModelServerPool, ServerKey


def select_fields(fields: list[str], expression: str) -> list[str]:
    """SageMaker's CSV JSONPath filters: ``$``, ``$[a:b]`` and ``$[i,j,...]`` (negative indices allowed)."""
    expression = expression.replace(" ", "")
    if expression == "$":
        return fields
    match = re.fullmatch(r"\$\[(-?\d*):(-?\d*)\]", expression)
    if match:
        start, stop = (int(x) if x else None for x in match.groups())
        return fields[start:stop]
    match = re.fullmatch(r"\$\[(-?\d+(?:,-?\d+)*)\]", expression)
    if match:
        return [fields[int(i)] for i in match.group(1).split(",")]
    raise ServiceError("ValidationException", f"unsupported CSV filter {expression!r}")


class TransformJobs(Jobs):
    """Batch transform for ``LocalSageMaker``, which provides the models and starts their servers."""

    workdir: Path
    models: dict[str, dict[str, Any]]
    _s3: Callable[[str], Any]
    server_pool: ModelServerPool
    _model_server: Callable[[str, Path, dict[str, str] | None], tuple[ServerKey, ModelServer]]

    def op_CreateTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["ModelName"] not in self.models:
            raise ServiceError(
                "ValidationException", f'Could not find model "{resource_arn("model", request["ModelName"])}".'
            )
        return {"TransformJobArn": self._start_job("transform", request, self._run_transform)}

    def op_DescribeTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.describe_transform(self._job(request["TransformJobName"], "transform"))

    def op_StopTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stop_job(self._job(request["TransformJobName"], "transform"), refuse_finished=True)
        return {}

    def op_ListTransformJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TransformJobSummaries": self._job_summaries("transform", request)}

    def _run_transform(self, job: Job) -> None:
        request = job.request
        work = self.workdir / "transform" / job.name
        work.mkdir(parents=True, exist_ok=True)
        key, server = self._model_server(request["ModelName"], work, request.get("Environment"))
        try:
            self._transform_objects(job, server)
        finally:
            # Kept warm for a later job or endpoint that needs an identical server (if it is healthy).
            self.server_pool.give_back(key, server)

    def _transform_objects(self, job: Job, server: ModelServer) -> None:
        request = job.request
        source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        content_type = request["TransformInput"].get("ContentType", "text/csv")
        accept = request["TransformOutput"].get("Accept", content_type)
        processing = request.get("DataProcessing", {})
        in_filter, out_filter = processing.get("InputFilter", "$"), processing.get("OutputFilter", "$")
        join = processing.get("JoinSource", "None") == "Input"
        out_bucket, out_prefix = s3files.split_uri(request["TransformOutput"]["S3OutputPath"])
        _, in_prefix = s3files.split_uri(source)
        s3 = self._s3(self.models[request["ModelName"]]["ExecutionRoleArn"])
        bucket = s3files.split_uri(source)[0]
        for key in s3files.keys_under(s3, source):
            records = [
                line
                for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
                if line.strip()
            ]
            out_lines: list[str] = []
            if records:
                inputs = [",".join(select_fields(r.split(","), in_filter)) for r in records]
                server.admit()
                status, _, body = server.invoke("\n".join(inputs).encode(), content_type, accept)
                if status != 200:
                    raise RuntimeError(f"ClientError: the model failed on {key}: {body.decode(errors='replace')[:500]}")
                predictions = [line for line in body.decode().splitlines() if line.strip()]
                if len(predictions) != len(records):
                    raise RuntimeError(
                        f"ClientError: {len(records)} records in {key} but {len(predictions)} predictions"
                    )
                for record, prediction in zip(records, predictions, strict=True):
                    fields = (record.split(",") if join else []) + prediction.split(",")
                    out_lines.append(",".join(select_fields(fields, out_filter)))
            relative = key[len(in_prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            out_key = f"{out_prefix.rstrip('/')}/{relative}.out".lstrip("/")
            s3.put_object(Bucket=out_bucket, Key=out_key, Body=("\n".join(out_lines) + "\n").encode())

    def describe_transform(self, job: Job) -> dict[str, Any]:
        described = {
            key: job.request[key]
            for key in (
                "TransformJobName",
                "ModelName",
                "TransformInput",
                "TransformOutput",
                "TransformResources",
                "DataProcessing",
                "BatchStrategy",
                "Environment",
            )
            if key in job.request
        }
        described.update(
            TransformJobArn=resource_arn("transform-job", job.name),
            TransformJobStatus=job.status,
            CreationTime=job.created,
            TransformStartTime=job.created,
        )
        if job.ended:
            described["TransformEndTime"] = job.ended
        if job.failure:
            described["FailureReason"] = job.failure
        return described
