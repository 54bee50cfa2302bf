"""Models, endpoint configs and endpoints: each endpoint is a model server process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime import s3files
from local_runtime.errors import ServiceError
from local_runtime.sagemaker import containers
from local_runtime.sagemaker.common import CONTAINER_PYTHON, listed, resource_arn
from local_runtime.sagemaker.server_pool import ModelServerPool, ServerKey
from local_runtime.template import ACCOUNT


class ModelServer:
    """One model_server.py process, with a count of requests in flight. Its output goes to its current
    owner's log: a warm server handed to an endpoint logs to the endpoint's folder from then on."""

    def __init__(self, model_dir: Path, code_dir: Path, program: str, log_path: Path) -> None:
        self._log_lock = threading.Lock()
        self._relay: threading.Thread | None = None
        self.log = log_path.open("ab")
        self.process = CONTAINER_PYTHON.popen(
            ["-m", "local_runtime.model_server", "--model-dir", str(model_dir), "--code-dir", str(code_dir),
             "--program", program],
            Path(__file__).resolve().parents[2],  # the repository root, for -m local_runtime.model_server
            dict(os.environ),
            subprocess.PIPE,
            subprocess.STDOUT,
        )  # fmt: skip
        assert self.process.stdout
        port = None
        for raw in self.process.stdout:  # what model_fn prints, then the line that says it is ready
            if raw.startswith(b"listening on "):
                port = int(raw.split()[-1])
                break
            self._write(raw)
        if port is None:
            self.stop()
            raise RuntimeError(f"model server did not start; see {log_path}")
        self.port = port
        self._relay = threading.Thread(target=self._relay_output, daemon=True, name=f"model-server-{port}")
        self._relay.start()
        self.in_flight = 0
        self._lock = threading.Lock()

    def log_to(self, log_path: Path) -> None:
        """Sends the server's output to a new owner's log."""
        with self._log_lock:
            self.log.close()
            self.log = log_path.open("ab")

    def _write(self, raw: bytes) -> None:
        with self._log_lock:
            if not self.log.closed:
                self.log.write(raw)
                self.log.flush()

    def _relay_output(self) -> None:
        assert self.process.stdout
        for raw in self.process.stdout:
            self._write(raw)

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

    def drain(self, timeout: float = 30) -> bool:
        """Waits for the requests in flight to be answered; False if some still are after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.in_flight

    def drain_and_stop(self, timeout: float = 30) -> None:
        self.drain(timeout)
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._relay is not None:
            self._relay.join(2)
        with self._log_lock:
            self.log.close()


@dataclass
class Endpoint:
    name: str
    config_name: str
    status: str = "Creating"
    failure: str | None = None
    server: ModelServer | None = None
    server_key: ServerKey | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)


class Hosting:
    """Models, endpoint configs and endpoints for ``LocalSageMaker``."""

    models: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    endpoints: dict[str, Endpoint]
    failing_deployments: dict[str, str]
    workdir: Path
    _lock: threading.RLock
    _tag: Callable[[str, dict[str, Any]], None]
    _s3: Callable[[str], Any]
    _pull: Callable[[str, str, str], None]
    server_pool: ModelServerPool

    # model servers, for transform jobs and endpoints -----------------------------
    def _model_server(
        self, model_name: str, work: Path, job_environment: dict[str, str] | None = None
    ) -> tuple[ServerKey, ModelServer]:
        """A warm server identical to the one this model needs, or a new one; the caller owns it until it
        gives it back to ``server_pool``. The model's role is checked either way."""
        model = self.models[model_name]
        container, role = model["PrimaryContainer"], model["ExecutionRoleArn"]
        environment = container.get("Environment", {})
        self._pull(role, container["Image"], model["ModelArn"])
        if "SAGEMAKER_SUBMIT_DIRECTORY" not in environment:
            # Serving a container image under Docker is not implemented, with or without docker on PATH.
            raise RuntimeError(
                containers.needs_docker(f"model {model_name}", container["Image"], "no SAGEMAKER_SUBMIT_DIRECTORY")
            )
        s3 = self._s3(role)
        program = environment.get("SAGEMAKER_PROGRAM", "inference.py")
        # Reading each archive's ETag is a HEAD, which S3 authorizes as s3:GetObject under the model's role
        # just as the download is: a warm server never skips the role's read of the model and its code.
        key = ServerKey(
            image=container["Image"],
            model_data_etag=s3files.etag(s3, container["ModelDataUrl"]),
            code_etag=s3files.etag(s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"]),
            program=program,
            environment=tuple(sorted({**environment, **(job_environment or {})}.items())),
        )
        # A warm server keeps its first owner's model and code folders (they hold the same content).
        server = self.server_pool.take(key)
        if server is not None:
            work.mkdir(parents=True, exist_ok=True)
            server.log_to(work / "server.log")
        else:
            model_dir = s3files.extract_tarball(s3, container["ModelDataUrl"], work / "model")
            code_dir = s3files.extract_tarball(s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"], work / "code")
            server = ModelServer(model_dir, code_dir, program, work / "server.log")
        return key, server

    def _release_server(self, key: ServerKey, server: ModelServer) -> None:
        """Gives a server its owner is done with to the warm pool once its requests are answered."""
        if server.drain():
            self.server_pool.give_back(key, server)
        else:
            server.stop()

    # models and endpoint configs ----------------------------------------------
    def op_CreateModel(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        with self._lock:
            if name in self.models:
                raise ServiceError(
                    "ValidationException", f'Cannot create already existing model "{resource_arn("model", name)}".'
                )
            self.models[name] = {**request, "CreationTime": time.time(), "ModelArn": resource_arn("model", name)}
        self._tag(resource_arn("model", name), request)
        return {"ModelArn": resource_arn("model", name)}

    def op_DescribeModel(self, request: dict[str, Any]) -> dict[str, Any]:
        model = self.models.get(request["ModelName"])
        if model is None:
            raise ServiceError("ValidationException", f'Could not find model "{request["ModelName"]}".')
        return {k: v for k, v in model.items() if k != "Tags"}

    def op_ListModels(self, request: dict[str, Any]) -> dict[str, Any]:
        models = listed(list(self.models.values()), request, lambda m: m["ModelName"], "CreationTime")
        return {"Models": [{k: m[k] for k in ("ModelName", "ModelArn", "CreationTime")} for m in models]}

    def op_DeleteModel(self, request: dict[str, Any]) -> dict[str, Any]:
        self.models.pop(request["ModelName"], None)
        return {}

    def op_CreateEndpointConfig(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        arn = resource_arn("endpoint-config", name)
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
        configs = listed(list(self.configs.values()), request, lambda c: c["EndpointConfigName"], "CreationTime")
        fields = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return {"EndpointConfigs": [{k: c[k] for k in fields} for c in configs]}

    def op_DeleteEndpointConfig(self, request: dict[str, Any]) -> dict[str, Any]:
        self.configs.pop(request["EndpointConfigName"], None)
        return {}

    # endpoints -----------------------------------------------------------------
    def op_CreateEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config_name = request["EndpointName"], request["EndpointConfigName"]
        arn = resource_arn("endpoint", name)
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
        return {"EndpointArn": resource_arn("endpoint", name)}

    def op_DescribeEndpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(request["EndpointName"])
        config = self.configs.get(endpoint.config_name, {})
        described = {
            "EndpointName": endpoint.name,
            "EndpointArn": resource_arn("endpoint", endpoint.name),
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
        endpoints = listed(list(self.endpoints.values()), request, lambda e: e.name)
        return {
            "Endpoints": [
                {
                    "EndpointName": e.name,
                    "EndpointArn": resource_arn("endpoint", e.name),
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
            raise ServiceError("ValidationException", f'Could not find endpoint "{resource_arn("endpoint", name)}".')
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
            key, server = self._model_server(variant["ModelName"], work)
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
            previous, previous_key = endpoint.server, endpoint.server_key
            endpoint.server, endpoint.server_key = server, key
            endpoint.config_name, endpoint.status, endpoint.modified = config_name, "InService", time.time()
        if previous and previous_key:
            # The replaced server waits in the pool only if it still answers its health check.
            self._release_server(previous_key, previous)

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
