"""SageMaker on localhost: training and transform jobs as local processes, endpoints as local servers.

It follows SageMaker's contracts closely enough that the project's script-mode code cannot tell:
- training: channels copied from S3 into ``<job>/input/data/<channel>``, hyperparameters as
  ``--name value`` arguments, ``SM_*`` variables, the model packed as ``model.tar.gz`` in S3,
  metrics parsed from the output with the job's ``MetricDefinitions``;
- transform: a model server per job, records split by line, ``DataProcessing`` filters and
  joins, one ``<input>.out`` object per input object;
- endpoints: a model server process each; an update starts the new one, switches traffic only
  when it answers ``/ping``, and stops the old one after its last in-flight request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session

from local_runtime import s3files
from local_runtime.access import AccessControl, AccessDenied, Check, Principal, sagemaker_checks
from local_runtime.errors import ServiceError
from local_runtime.lambdas import ProviderError
from local_runtime.template import ACCOUNT, REGION

TERMINAL = {"Completed", "Failed", "Stopped"}


@cache
def _modeled_errors() -> set[str]:
    """The errors SageMaker's API model declares; the SDKs give these exception classes of their own."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {name for name in model.shape_names if model.shape_for(name).metadata.get("exception")}


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _listed(items: list[Any], request: dict[str, Any], name: Callable[[Any], str], created: str = "") -> list[Any]:
    """A List* page: NameContains, then newest first unless SortOrder says otherwise, up to MaxResults."""
    contains = request.get("NameContains", "")
    chosen = [item for item in items if contains in name(item)]
    if request.get("SortBy") == "Name":
        key: Callable[[Any], Any] = name
    else:
        key = (lambda item: item[created]) if created else (lambda item: item.created)
    chosen.sort(key=key, reverse=request.get("SortOrder", "Descending") == "Descending")
    return chosen[: int(request.get("MaxResults", 100))]


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


class ModelServer:
    """One model_server.py process, with a count of requests in flight."""

    def __init__(self, model_dir: Path, code_dir: Path, program: str, log_path: Path) -> None:
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_runtime.model_server",
                "--model-dir",
                str(model_dir),
                "--code-dir",
                str(code_dir),
                "--program",
                program,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        assert self.process.stdout
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"model server did not start; see {log_path}")
        self.port = int(line.split()[-1])
        self.in_flight = 0
        self._lock = threading.Lock()

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    def admit(self) -> None:
        """Counts a request in before it is sent; the endpoint calls this while it still routes here."""
        with self._lock:
            self.in_flight += 1

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[int, str, bytes]:
        """Sends an admitted request and counts it out when the answer is back."""
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/invocations",
                data=body,
                headers={"Content-Type": content_type, "Accept": accept},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
                    return reply.status, reply.headers.get("Content-Type", accept), reply.read()
            except urllib.error.HTTPError as error:
                return error.code, "text/plain", error.read()
        finally:
            with self._lock:
                self.in_flight -= 1

    def drain_and_stop(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@dataclass
class Job:
    kind: str
    request: dict[str, Any]
    status: str = "InProgress"
    secondary: str = "Starting"
    failure: str | None = None
    created: float = field(default_factory=time.time)
    ended: float | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.request["TrainingJobName" if self.kind == "training" else "TransformJobName"]


@dataclass
class Endpoint:
    name: str
    config_name: str
    status: str = "Creating"
    failure: str | None = None
    server: ModelServer | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)


# Step Functions manages these rules to learn when a .sync job ends; its role needs access to them.
SYNC_RULES = {
    "training": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "transform": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
}


def image_checks(image: str) -> list[Check]:
    """What pulling a container image from ECR takes: a token, then the repository's layers."""
    registry, _, repository = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3] if registry.count(".") >= 3 else REGION
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0].split('@')[0]}"
    return [
        Check("ecr:GetAuthorizationToken", "*"),
        *(Check(action, arn) for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")),
    ]


class LocalSageMaker:
    """Jobs and endpoints act with the execution role they are given: S3, image pulls and logs."""

    def __init__(self, client_as: Callable[[str, str, str], Any], access: AccessControl, workdir: Path) -> None:
        self._client_as = client_as
        self.access = access
        self.workdir = workdir
        self.jobs: dict[tuple[str, str], Job] = {}  # by (kind, name): training and transform names are separate
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self._lock = threading.RLock()
        # Fault injection for tests: endpoint name -> why its next deployment fails.
        self.failing_deployments: dict[str, str] = {}

    # ------------------------------------------------------------------ the JSON API
    def handle(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            raise ServiceError("UnknownOperationException", f"{operation} is not supported by the local SageMaker")
        return method(request)

    def operations(self) -> list[str]:
        """The API actions served, spelled as Step Functions resources spell them (``createModel``)."""
        names = [name.removeprefix("op_") for name in dir(self) if name.startswith("op_")]
        return [name[:1].lower() + name[1:] for name in names]

    def _tag(self, arn: str, request: dict[str, Any]) -> None:
        self.tags.setdefault(arn, []).extend(request.get("Tags", []))

    def op_AddTags(self, request: dict[str, Any]) -> dict[str, Any]:
        self._tag(request["ResourceArn"], request)
        return {"Tags": self.tags[request["ResourceArn"]]}

    def op_ListTags(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": self.tags.get(request["ResourceArn"], [])}

    # training ----------------------------------------------------------------
    def op_CreateTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TrainingJobArn": self._start_job("training", request, self._run_training)}

    def op_DescribeTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.describe_training(self._job(request["TrainingJobName"], "training"))

    def op_StopTrainingJob(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stop_job(self._job(request["TrainingJobName"], "training"), refuse_finished=True)
        return {}

    def op_CreateTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["ModelName"] not in self.models:
            raise ServiceError("ValidationException", f'Could not find model "{_arn("model", request["ModelName"])}".')
        return {"TransformJobArn": self._start_job("transform", request, self._run_transform)}

    def op_DescribeTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.describe_transform(self._job(request["TransformJobName"], "transform"))

    def op_StopTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stop_job(self._job(request["TransformJobName"], "transform"), refuse_finished=True)
        return {}

    def op_ListTrainingJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TrainingJobSummaries": self._job_summaries("training", request)}

    def op_ListTransformJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TransformJobSummaries": self._job_summaries("transform", request)}

    def _job_summaries(self, kind: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = "TrainingJob" if kind == "training" else "TransformJob"
        summaries = []
        for job in _listed([j for j in list(self.jobs.values()) if j.kind == kind], request, lambda j: j.name):
            if request.get("StatusEquals", job.status) != job.status:
                continue
            summary = {
                f"{prefix}Name": job.name,
                f"{prefix}Arn": _arn(f"{kind}-job", job.name),
                "CreationTime": job.created,
                "LastModifiedTime": job.ended or job.created,
                f"{prefix}Status": job.status,
            }
            if job.ended:
                summary["TrainingEndTime" if kind == "training" else "TransformEndTime"] = job.ended
            if job.failure and kind == "transform":
                summary["FailureReason"] = job.failure
            summaries.append(summary)
        return summaries

    def _start_job(self, kind: str, request: dict[str, Any], runner: Callable[[Job], None]) -> str:
        job = Job(kind, request)
        name = job.name
        arn = _arn(f"{kind}-job", name)
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
            if job.process and job.process.poll() is None:
                job.process.kill()

    def _s3(self, role_arn: str) -> Any:
        return self._client_as("s3", role_arn, "SageMaker")

    def _pull(self, role_arn: str, image: str) -> None:
        """The image pull SageMaker makes with the execution role before a container starts."""
        try:
            self.access.require(self.access.principal(role_arn, "SageMaker"), *image_checks(image))
        except AccessDenied as denied:
            raise RuntimeError(f"ClientError: Unable to pull image {image}: {denied}") from None

    def _run_training(self, job: Job) -> None:
        request = job.request
        role = request["RoleArn"]
        self._pull(role, request["AlgorithmSpecification"]["TrainingImage"])
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
            TrainingJobArn=_arn("training-job", job.name),
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

    # transform ---------------------------------------------------------------
    def _model_server(self, model_name: str, work: Path) -> ModelServer:
        model = self.models[model_name]
        container, role = model["PrimaryContainer"], model["ExecutionRoleArn"]
        environment = container.get("Environment", {})
        self._pull(role, container["Image"])
        model_dir = s3files.extract_tarball(self._s3(role), container["ModelDataUrl"], work / "model")
        code_dir = s3files.extract_tarball(self._s3(role), environment["SAGEMAKER_SUBMIT_DIRECTORY"], work / "code")
        return ModelServer(
            model_dir, code_dir, environment.get("SAGEMAKER_PROGRAM", "inference.py"), work / "server.log"
        )

    def _run_transform(self, job: Job) -> None:
        request = job.request
        work = self.workdir / "transform" / job.name
        work.mkdir(parents=True, exist_ok=True)
        server = self._model_server(request["ModelName"], work)
        try:
            self._transform_objects(job, server)
        finally:
            server.stop()

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
            TransformJobArn=_arn("transform-job", job.name),
            TransformJobStatus=job.status,
            CreationTime=job.created,
            TransformStartTime=job.created,
        )
        if job.ended:
            described["TransformEndTime"] = job.ended
        if job.failure:
            described["FailureReason"] = job.failure
        return described

    # models and endpoint configs ----------------------------------------------
    def op_CreateModel(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        with self._lock:
            if name in self.models:
                raise ServiceError(
                    "ValidationException", f'Cannot create already existing model "{_arn("model", name)}".'
                )
            self.models[name] = {**request, "CreationTime": time.time(), "ModelArn": _arn("model", name)}
        self._tag(_arn("model", name), request)
        return {"ModelArn": _arn("model", name)}

    def op_DescribeModel(self, request: dict[str, Any]) -> dict[str, Any]:
        model = self.models.get(request["ModelName"])
        if model is None:
            raise ServiceError("ValidationException", f'Could not find model "{request["ModelName"]}".')
        return {k: v for k, v in model.items() if k != "Tags"}

    def op_ListModels(self, request: dict[str, Any]) -> dict[str, Any]:
        models = _listed(list(self.models.values()), request, lambda m: m["ModelName"], "CreationTime")
        return {"Models": [{k: m[k] for k in ("ModelName", "ModelArn", "CreationTime")} for m in models]}

    def op_DeleteModel(self, request: dict[str, Any]) -> dict[str, Any]:
        self.models.pop(request["ModelName"], None)
        return {}

    def op_CreateEndpointConfig(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        arn = _arn("endpoint-config", name)
        with self._lock:
            if name in self.configs:
                raise ServiceError(
                    "ValidationException", f'Cannot create already existing endpoint configuration "{arn}".'
                )
            for variant in request["ProductionVariants"]:
                if variant["ModelName"] not in self.models:
                    raise ServiceError("ValidationException", f'Could not find model "{variant["ModelName"]}".')
            self.configs[name] = {**request, "EndpointConfigArn": arn, "CreationTime": time.time()}
        self._tag(arn, request)
        return {"EndpointConfigArn": arn}

    def op_DescribeEndpointConfig(self, request: dict[str, Any]) -> dict[str, Any]:
        config = self.configs.get(request["EndpointConfigName"])
        if config is None:
            raise ServiceError(
                "ValidationException", f'Could not find endpoint configuration "{request["EndpointConfigName"]}".'
            )
        return {k: v for k, v in config.items() if k != "Tags"}

    def op_ListEndpointConfigs(self, request: dict[str, Any]) -> dict[str, Any]:
        configs = _listed(list(self.configs.values()), request, lambda c: c["EndpointConfigName"], "CreationTime")
        fields = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return {"EndpointConfigs": [{k: c[k] for k in fields} for c in configs]}

    def op_DeleteEndpointConfig(self, request: dict[str, Any]) -> dict[str, Any]:
        self.configs.pop(request["EndpointConfigName"], None)
        return {}

    # endpoints -----------------------------------------------------------------
    def op_CreateEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config_name = request["EndpointName"], request["EndpointConfigName"]
        arn = _arn("endpoint", name)
        with self._lock:
            if name in self.endpoints:
                raise ServiceError("ValidationException", f'Cannot create already existing endpoint "{arn}".')
            self._config(config_name)
            endpoint = self.endpoints[name] = Endpoint(name, config_name)
        self._tag(arn, request)
        threading.Thread(target=self._deploy, args=(endpoint, config_name), daemon=True).start()
        return {"EndpointArn": arn}

    def op_UpdateEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config_name = request["EndpointName"], request["EndpointConfigName"]
        with self._lock:
            endpoint = self._endpoint(name)
            self._config(config_name)
            if endpoint.status != "InService":
                raise ServiceError("ValidationException", f"Cannot update endpoint {name} in status {endpoint.status}.")
            endpoint.status, endpoint.failure, endpoint.modified = "Updating", None, time.time()
        threading.Thread(target=self._deploy, args=(endpoint, config_name), daemon=True).start()
        return {"EndpointArn": _arn("endpoint", name)}

    def op_DescribeEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(request["EndpointName"])
        config = self.configs.get(endpoint.config_name, {})
        described = {
            "EndpointName": endpoint.name,
            "EndpointArn": _arn("endpoint", endpoint.name),
            "EndpointConfigName": endpoint.config_name,
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
            "ProductionVariants": [
                {"VariantName": v["VariantName"], "CurrentWeight": 1.0, "DesiredWeight": 1.0}
                for v in config.get("ProductionVariants", [])
            ],
        }
        if endpoint.failure:
            described["FailureReason"] = endpoint.failure
        return described

    def op_ListEndpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoints = _listed(list(self.endpoints.values()), request, lambda e: e.name)
        return {
            "Endpoints": [
                {
                    "EndpointName": e.name,
                    "EndpointArn": _arn("endpoint", e.name),
                    "EndpointStatus": e.status,
                    "CreationTime": e.created,
                    "LastModifiedTime": e.modified,
                }
                for e in endpoints
                if request.get("StatusEquals", e.status) == e.status
            ]
        }

    def op_DeleteEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            endpoint = self._endpoint(request["EndpointName"])
            del self.endpoints[endpoint.name]
        if endpoint.server:
            endpoint.server.drain_and_stop()
        return {}

    def _endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ServiceError("ValidationException", f'Could not find endpoint "{_arn("endpoint", name)}".')
        return endpoint

    def _config(self, name: str) -> dict[str, Any]:
        config = self.configs.get(name)
        if config is None:
            raise ServiceError("ValidationException", f'Could not find endpoint configuration "{name}".')
        return config

    def _deploy(self, endpoint: Endpoint, config_name: str) -> None:
        """Starts the new model server; traffic moves only once it is healthy."""
        variant = self._config(config_name)["ProductionVariants"][0]
        work = self.workdir / "endpoints" / endpoint.name / f"{config_name}-{time.monotonic_ns()}"
        try:
            if endpoint.name in self.failing_deployments:
                raise RuntimeError(self.failing_deployments.pop(endpoint.name))
            server = self._model_server(variant["ModelName"], work)
            if not server.ping():
                server.stop()
                raise RuntimeError("the model server did not pass its health check")
        except Exception as error:
            with self._lock:
                endpoint.modified = time.time()
                if endpoint.server is None:
                    endpoint.status, endpoint.failure = "Failed", f"{error}"
                else:
                    # A failed update leaves the old model serving, as SageMaker does.
                    endpoint.status = "InService"
                    endpoint.failure = f"Update to {config_name} failed and was rolled back: {error}"
            return
        with self._lock:
            previous, endpoint.server = endpoint.server, server
            endpoint.config_name, endpoint.status, endpoint.modified = config_name, "InService", time.time()
        if previous:
            previous.drain_and_stop()

    def fail_next_deployment(self, endpoint_name: str, reason: str) -> None:
        """Makes the next create or update of this endpoint fail its health check, as a broken model would."""
        self.failing_deployments[endpoint_name] = reason

    def invoke_endpoint(self, name: str, body: bytes, content_type: str, accept: str) -> tuple[int, str, bytes]:
        with self._lock:
            endpoint = self.endpoints.get(name)
            server = endpoint.server if endpoint else None
            if server is not None:
                # Admitted under the lock that guards the traffic switch, so a draining server
                # never sees a request arrive after it reported none in flight.
                server.admit()
        if server is None:
            # The runtime API names this error ValidationError, unlike the control plane's ValidationException.
            raise ServiceError("ValidationError", f"Endpoint {name} of account {ACCOUNT} not found.")
        return server.invoke(body, content_type, accept)

    # request-response integrations --------------------------------------------------
    def run_call(self, api: str, request: dict[str, Any], caller: Principal | None, sdk: bool) -> dict[str, Any]:
        """A ``sagemaker:<api>`` or ``aws-sdk:sagemaker:<api>`` task, failing with the error name AWS gives:
        the error code for the SDK integration, the Java exception name for the optimised one."""
        operation = api[:1].upper() + api[1:]
        try:
            if caller is not None:
                for check in sagemaker_checks(operation, request):
                    decision = self.access.check(caller, check)
                    if not decision.allowed:
                        raise ServiceError("AccessDeniedException", decision.message)
            return json.loads(json.dumps(self.handle(operation, request), default=str))
        except ServiceError as error:
            name = error.code if sdk or error.code in _modeled_errors() else "AmazonSageMakerException"
            if not sdk and not name.endswith("Exception"):
                name += "Exception"
            if sdk:
                cause = f"{error} (Service: SageMaker, Status Code: {error.status}, Request ID: {uuid.uuid4()})"
            else:
                cause = (
                    f"{error} (Service: AmazonSageMaker; Status Code: {error.status}; Error Code: {error.code}; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)"
                )
            raise ProviderError(f"SageMaker.{name}", cause) from None

    # .sync integrations ----------------------------------------------------------
    def run_sync(self, kind: str, request: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
        """What ``createTrainingJob.sync``/``createTransformJob.sync`` return: the final Describe* output."""
        if caller is not None:
            self._authorize_sync(kind, request, caller)
        try:
            if kind == "training":
                self.op_CreateTrainingJob(request)
                job = self.jobs["training", request["TrainingJobName"]]
            else:
                self.op_CreateTransformJob(request)
                job = self.jobs["transform", request["TransformJobName"]]
        except ServiceError as error:
            raise ProviderError(f"SageMaker.{error.code}", str(error)) from None
        job.done.wait()
        described = self.describe_training(job) if kind == "training" else self.describe_transform(job)
        if job.status != "Completed":
            # AWS names this States.TaskFailed, a name reserved for the engine itself.
            raise ProviderError(f"SageMaker.{kind.title()}JobFailed", json.dumps(described, default=str))
        return described

    def _authorize_sync(self, kind: str, request: dict[str, Any], caller: Principal) -> None:
        """The permissions a .sync task needs: the job's Create and Describe, the role it passes, the event rule."""
        operation = "TrainingJob" if kind == "training" else "TransformJob"
        rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{SYNC_RULES[kind]}"
        checks = [
            *sagemaker_checks(f"Create{operation}", request),
            *sagemaker_checks(f"Describe{operation}", request),
            *(Check(action, rule) for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")),
        ]
        for check in checks:
            decision = self.access.check(caller, check)
            if not decision.allowed:
                events = check.action.startswith("events:")
                service = "AmazonCloudWatchEvents" if events else "AmazonSageMaker"
                raise ProviderError(
                    "Events.AccessDeniedException" if events else "SageMaker.AmazonSageMakerException",
                    f"{decision.message} (Service: {service}; Status Code: 400; Error Code: AccessDeniedException; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)",
                )

    def stop(self) -> None:
        for job in self.jobs.values():
            self._stop_job(job)
        for endpoint in list(self.endpoints.values()):
            if endpoint.server:
                endpoint.server.stop()
        shutil.rmtree(self.workdir / "endpoints", ignore_errors=True)
