"""Training jobs: ``train.py`` as one process per host under SageMaker's script-mode training contract.

An ``InstanceCount`` of N gives N processes, ``algo-1`` ... ``algo-N``, each with its own
``/opt/ml``-style folder: ``resourceconfig.json`` and ``inputdataconfig.json``, the ``SM_*`` environment
and its own copy of each channel (all objects when ``FullyReplicated``, every N-th object key when
``ShardedByS3Key``). The hosts share one loopback here, so ``MASTER_ADDR`` and ``MASTER_PORT`` (the
rendezvous SageMaker's distributed toolkits set) say where the first host listens. One host failing fails
the job with its reason, every host's ``/opt/ml/model`` goes into one model.tar.gz, and each host's output
goes to CloudWatch Logs as the stream ``<job>/algo-N-<epoch>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from local_runtime import s3files
from local_runtime.sagemaker import containers
from local_runtime.sagemaker.common import CONTAINER_PYTHON, Job, resource_arn
from local_runtime.sagemaker.jobs import Jobs

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# How long the other hosts get to finish once one host has failed, before they are killed.
PEER_GRACE_SECONDS = 5


def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, count + 1)]


def shard(keys: list[str], host_index: int, hosts: int) -> list[str]:
    """ShardedByS3Key: each host gets about 1/N of the objects, by key order."""
    return [key for position, key in enumerate(sorted(keys)) if position % hosts == host_index]


def unmet_requirements(requirements_txt: Path) -> list[str]:
    """What the framework container would pip-install from the code's requirements.txt and this Python lacks."""
    unmet = []
    for line in requirements_txt.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        wanted = Requirement(line)
        try:
            installed = metadata.version(wanted.name)
        except metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        if not wanted.specifier.contains(installed, prereleases=True):
            unmet.append(f"{line} (installed: {installed})")
    return unmet


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TrainingJobs(Jobs):
    """Training for ``LocalSageMaker``, which provides the clients and the image pull of the job's role."""

    workdir: Path
    _s3: Callable[[str], Any]
    _client_as: Callable[[str, str, str], Any]
    _pull: Callable[[str, str, str], None]

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
        resources = request["ResourceConfig"]
        hosts = host_names(int(resources.get("InstanceCount", 1)))
        work = self.workdir / "training" / job.name
        code_dir = work / "code"
        job.secondary = "Downloading"
        hyperparameters = {k: str(v) for k, v in request.get("HyperParameters", {}).items()}
        program = hyperparameters.get("sagemaker_program")
        submit = hyperparameters.get("sagemaker_submit_directory")
        if not program or not submit:
            image = request["AlgorithmSpecification"]["TrainingImage"]
            if containers.docker():
                self._train_in_docker(job, image, hyperparameters, work)
                return
            job.failure = containers.needs_docker(
                f"training job {job.name}", image, "no sagemaker_program and sagemaker_submit_directory hyperparameters"
            )
            raise RuntimeError(job.failure)
        s3files.extract_tarball(self._s3(role), submit, code_dir)
        requirements = code_dir / "requirements.txt"
        unmet = unmet_requirements(requirements) if requirements.exists() else []
        if unmet:
            # The container would pip-install these; the local runtime runs in this Python and installs nothing.
            raise RuntimeError(f"AlgorithmError: requirements.txt needs {', '.join(unmet)}; install them locally")
        user_hps = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        channels = self._download_channels(job, hosts, work)
        rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
        args = [item for name, value in user_hps.items() for item in (f"--{name}", value)]
        job.secondary = "Training"
        started = int(time.time() * 1000)
        logs = {host: (work / host / "training.log").open("wb") for host in hosts}
        try:
            job.processes = [
                CONTAINER_PYTHON.popen(
                    [program, *args],
                    code_dir,
                    self._host_environment(job, host, hosts, work / host, channels[host], user_hps, rendezvous),
                    logs[host],
                    subprocess.STDOUT,
                )
                for host in hosts
            ]
            failed = self._wait_for_hosts(job, hosts, request)
        finally:
            for log in logs.values():
                log.close()
        outputs = {host: (work / host / "training.log").read_text(errors="replace") for host in hosts}
        self._publish_logs(role, job.name, started, outputs)
        job.metrics = self._metrics(request, "\n".join(outputs.values()))
        if job.status != "InProgress":
            return
        if failed:
            host, code = failed
            failure_file = work / host / "output" / "failure"
            reason = failure_file.read_text().strip() if failure_file.exists() else outputs[host].strip()[-800:]
            job.status, job.secondary = "Failed", "Failed"
            # SageMaker keeps the first 1024 characters of the failure file.
            job.failure = f"AlgorithmError: {reason[:1024]}, exit code: {code}"
            return
        job.secondary = "Uploading"
        merged = work / "model"
        for host in hosts:  # every host's /opt/ml/model, as SageMaker collects them
            shutil.copytree(work / host / "model", merged, dirs_exist_ok=True)
        archive = s3files.make_tarball(merged, work / "model.tar.gz")
        bucket, prefix = s3files.split_uri(request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{job.name}/output/model.tar.gz".lstrip("/")
        self._s3(role).upload_file(str(archive), bucket, key)
        job.request = {**request, "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{key}"}}

    def _train_in_docker(self, job: Job, image: str, hyperparameters: dict[str, str], work: Path) -> None:
        """One host: ``docker run <image> train`` with /opt/ml mounted, then its model uploaded (untested here)."""
        request, role = job.request, job.request["RoleArn"]
        opt_ml = work / "algo-1"
        config = opt_ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for channel in request.get("InputDataConfig", []):
            target = opt_ml / "input" / "data" / channel["ChannelName"]
            target.mkdir(parents=True, exist_ok=True)
            s3files.download(self._s3(role), channel["DataSource"]["S3DataSource"]["S3Uri"], target)
        (opt_ml / "model").mkdir(exist_ok=True)
        job.secondary = "Training"
        max_runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        code = containers.run_image(image, opt_ml, ["train"], request.get("Environment", {}),
                                    work / "training.log", max_runtime)  # fmt: skip
        if code != 0:
            failure = opt_ml / "output" / "failure"
            reason = failure.read_text().strip() if failure.exists() else "see the container's log"
            job.status, job.secondary = "Failed", "Failed"
            job.failure = f"AlgorithmError: {reason[:1024]}, exit code: {code}"
            return
        archive = s3files.make_tarball(opt_ml / "model", work / "model.tar.gz")
        bucket, prefix = s3files.split_uri(request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{job.name}/output/model.tar.gz".lstrip("/")
        self._s3(role).upload_file(str(archive), bucket, key)
        job.request = {**request, "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{key}"}}

    def _download_channels(self, job: Job, hosts: list[str], work: Path) -> dict[str, dict[str, Path]]:
        """Each host's folder per channel: every object, or its share of a ShardedByS3Key channel."""
        s3 = self._s3(job.request["RoleArn"])
        cache = work / "downloaded"
        per_host: dict[str, dict[str, Path]] = {host: {} for host in hosts}
        for channel in job.request.get("InputDataConfig", []):
            name, source = channel["ChannelName"], channel["DataSource"]["S3DataSource"]
            s3files.download(s3, source["S3Uri"], cache / name)
            files = sorted(p.relative_to(cache / name).as_posix() for p in (cache / name).rglob("*") if p.is_file())
            for index, host in enumerate(hosts):
                target = work / host / "input" / "data" / name
                target.mkdir(parents=True, exist_ok=True)
                chosen = files
                if source.get("S3DataDistributionType") == "ShardedByS3Key":
                    chosen = shard(files, index, len(hosts))
                for relative in chosen:
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cache / name / relative, target / relative)
                per_host[host][name] = target
        return per_host

    def _host_environment(
        self,
        job: Job,
        host: str,
        hosts: list[str],
        root: Path,
        channels: dict[str, Path],
        user_hps: dict[str, str],
        rendezvous: dict[str, str],
    ) -> dict[str, str]:
        request = job.request
        config = root / "input" / "config"
        for folder in (root / "model", root / "output" / "data", config):
            folder.mkdir(parents=True, exist_ok=True)
        instance_type = request["ResourceConfig"]["InstanceType"]
        resource_config = {
            "current_host": host,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
            ],
            "network_interface_name": "eth0",
        }
        data_config = {
            channel["ChannelName"]: {
                "TrainingInputMode": request["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                    "S3DataDistributionType", "FullyReplicated"
                ),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
                **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
            }
            for channel in request.get("InputDataConfig", [])
        }
        (config / "resourceconfig.json").write_text(json.dumps(resource_config))
        (config / "inputdataconfig.json").write_text(json.dumps(data_config))
        (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
        # The hosts share this machine's cores; each gets its share, so N hosts do not oversubscribe them.
        cpus = max(1, (os.cpu_count() or 1) // len(hosts))
        return {
            **os.environ,
            **rendezvous,
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DIR": str(root / "output"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_CONFIG_DIR": str(config),
            "SM_RESOURCE_CONFIG": json.dumps(resource_config),
            "SM_INPUT_DATA_CONFIG": json.dumps(data_config),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_CURRENT_HOST": host,
            "SM_HOSTS": json.dumps(hosts),
            "SM_NUM_CPUS": str(cpus),
            "SM_NUM_GPUS": "0",
            "OMP_NUM_THREADS": str(cpus),
            "SM_TRAINING_ENV": json.dumps(
                {"job_name": job.name, "hyperparameters": user_hps, "current_host": host, "hosts": hosts}
            ),
            **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
            **{f"SM_HP_{name.upper()}": value for name, value in user_hps.items()},
        }

    def _wait_for_hosts(self, job: Job, hosts: list[str], request: dict[str, Any]) -> tuple[str, int] | None:
        """The first host to fail and its exit code, or None. A run past MaxRuntimeInSeconds fails the job."""
        max_runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        deadline = time.monotonic() + max_runtime
        failed: tuple[str, int] | None = None
        grace_ends = float("inf")
        while True:
            codes = [process.poll() for process in job.processes]
            if failed is None:
                failed = next(((h, c) for h, c in zip(hosts, codes, strict=True) if c not in (None, 0)), None)
                if failed:
                    grace_ends = time.monotonic() + PEER_GRACE_SECONDS
            if all(code is not None for code in codes):
                return failed
            if time.monotonic() > min(grace_ends, deadline):
                self._kill(job)
                if failed is None and job.status == "InProgress":
                    job.status, job.secondary = "Failed", "MaxRuntimeExceeded"
                    job.failure = f"MaxRuntimeExceeded: training ran longer than {max_runtime} seconds"
            time.sleep(0.05)

    @staticmethod
    def _kill(job: Job) -> None:
        for process in job.processes:
            if process.poll() is None:
                process.kill()

    def _publish_logs(self, role: str, job_name: str, started_ms: int, outputs: dict[str, str]) -> None:
        """Each host's output as its own CloudWatch Logs stream, written with the job's role."""
        logs = self._client_as("logs", role, "SageMaker")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=LOG_GROUP)
        for host, output in outputs.items():
            stream = f"{job_name}/{host}-{started_ms // 1000}"
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
            lines = [line for line in output.splitlines() if line.strip()] or ["(no output)"]
            events = [{"timestamp": started_ms, "message": line} for line in lines]
            logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)
            for line in lines:
                print(f"[{LOG_GROUP} {stream}] {line}")

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
