"""The warm pool of model servers: identical servers are reused, one owner at a time, and none outlive
their idle time or the deployment."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_runtime.sagemaker.hosting import ModelServer
from local_runtime.sagemaker.server_pool import ModelServerPool, ServerKey
from local_runtime.sagemaker.service import LocalSageMaker

INFERENCE = """
def model_fn(model_dir):
    return open(model_dir + "/label.txt").read().strip()

def input_fn(body, content_type):
    return body.decode().splitlines()

def predict_fn(rows, label):
    return [label for _ in rows]

def output_fn(predictions, accept):
    return "\\n".join(predictions), accept
"""


def key(model: str = "model-etag", code: str = "code-etag") -> ServerKey:
    return ServerKey("image:1", model, code, "inference.py", (("SAGEMAKER_PROGRAM", "inference.py"),))


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[], ModelServer]]:
    """Starts model servers answering with a fixed label; stops any still running after the test."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "label.txt").write_text("setosa")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(INFERENCE)
    started: list[ModelServer] = []

    def start() -> ModelServer:
        server = ModelServer(tmp_path / "model", tmp_path / "code", "inference.py", tmp_path / "server.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def exited(server: ModelServer, timeout: float = 10) -> bool:
    try:
        server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_server_given_back_is_taken_again_by_an_identical_key(start_server) -> None:
    pool = ModelServerPool(idle_seconds=60)
    server = start_server()
    pool.give_back(key(), server)
    taken = pool.take(key())
    assert taken is not None and taken.process.pid == server.process.pid
    assert taken.ping()
    pool.close()


def test_a_different_model_code_program_or_environment_does_not_take_the_warm_server(start_server) -> None:
    pool = ModelServerPool(idle_seconds=60)
    pool.give_back(key(), start_server())
    different = [
        key(model="other-model-etag"),
        key(code="other-code-etag"),
        ServerKey("image:1", "model-etag", "code-etag", "other.py", key().environment),
        ServerKey("image:1", "model-etag", "code-etag", "inference.py", (("EXTRA", "1"),)),
        ServerKey("image:2", "model-etag", "code-etag", "inference.py", key().environment),
    ]
    for other in different:
        assert pool.take(other) is None
    assert len(pool.idle_servers()) == 1
    pool.close()


def test_a_taken_server_is_never_handed_out_twice(start_server) -> None:
    pool = ModelServerPool(idle_seconds=60)
    pool.give_back(key(), start_server())
    first = pool.take(key())
    assert first is not None
    assert pool.take(key()) is None  # in use by its first taker
    pool.give_back(key(), first)
    assert pool.take(key()) is first


def test_a_server_that_died_is_neither_kept_nor_handed_out(start_server) -> None:
    pool = ModelServerPool(idle_seconds=60)
    dead = start_server()
    dead.process.kill()
    dead.process.wait()
    pool.give_back(key(), dead)
    assert pool.idle_servers() == []
    dying = start_server()
    pool.give_back(key(), dying)
    dying.process.kill()
    dying.process.wait()
    assert pool.take(key()) is None


def test_closing_the_pool_stops_every_idle_server_and_any_given_back_later(start_server) -> None:
    pool = ModelServerPool(idle_seconds=60)
    idle = [start_server(), start_server()]
    for server in idle:
        pool.give_back(key(), server)
    pool.close()
    assert all(exited(server) for server in idle)
    late = start_server()
    pool.give_back(key(), late)
    assert exited(late)


def test_a_server_idle_past_its_time_is_stopped(start_server) -> None:
    now = [0.0]
    pool = ModelServerPool(idle_seconds=300, clock=lambda: now[0])
    server = start_server()
    pool.give_back(key(), server)
    now[0] = 299.0
    pool.expire()
    assert server.process.poll() is None
    now[0] = 300.0
    pool.expire()
    assert exited(server)
    assert pool.take(key()) is None


def test_the_pool_stops_an_idle_server_by_itself_when_its_time_is_up(start_server) -> None:
    pool = ModelServerPool(idle_seconds=0.2)
    server = start_server()
    pool.give_back(key(), server)
    assert exited(server)
    assert pool.idle_servers() == []


# A deployment-level check: LocalSageMaker on moto, a transform job and then an endpoint for the same model.


class RecordingAccess:
    """Allows everything and records which roles SageMaker took and for what."""

    def __init__(self) -> None:
        self.assumed: list[tuple[str, str | None]] = []
        self.required: list[str] = []

    def assume(self, role_arn: str, service: str, session: str, source_arn: str | None = None) -> str:
        self.assumed.append((role_arn, source_arn))
        return role_arn

    def require(self, principal: str, *checks: Any) -> None:
        self.required += [f"{principal} {check.action}" for check in checks]


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_endpoint_takes_the_warm_server_a_transform_left_and_still_checks_its_own_role(aws, tmp_path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="model.tar.gz", Body=tarball({"label.txt": "setosa"}))
    s3.put_object(Bucket="bucket", Key="code.tar.gz", Body=tarball({"inference.py": INFERENCE}))
    s3.put_object(Bucket="bucket", Key="test/part.csv", Body=b"x,5.1\ny,4.9\n")
    access = RecordingAccess()
    sagemaker = LocalSageMaker(lambda service, role, session: boto3.client(service), access, tmp_path)  # type: ignore[arg-type]
    container = {
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1",
        "ModelDataUrl": "s3://bucket/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/code.tar.gz"},
    }
    try:
        for name, role in (
            ("scoring", "arn:aws:iam::123456789012:role/scoring"),
            ("serving", "arn:aws:iam::123456789012:role/serving"),
        ):
            sagemaker.handle(
                "CreateModel", {"ModelName": name, "ExecutionRoleArn": role, "PrimaryContainer": container}
            )
        sagemaker.handle(
            "CreateTransformJob",
            {
                "TransformJobName": "score",
                "ModelName": "scoring",
                "TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/test/"}}},
                "TransformOutput": {"S3OutputPath": "s3://bucket/out/"},
            },
        )
        job = sagemaker.jobs["transform", "score"]
        assert job.done.wait(30) and job.status == "Completed", job.failure
        (warm,) = sagemaker.server_pool.idle_servers()
        sagemaker.handle(
            "CreateEndpointConfig",
            {"EndpointConfigName": "config", "ProductionVariants": [{"VariantName": "all", "ModelName": "serving"}]},
        )
        sagemaker.handle("CreateEndpoint", {"EndpointName": "endpoint", "EndpointConfigName": "config"})
        wait_until(lambda: sagemaker.endpoints["endpoint"].status != "Creating")
        endpoint = sagemaker.endpoints["endpoint"]
        assert endpoint.status == "InService", endpoint.failure
        assert endpoint.server is not None and endpoint.server.process.pid == warm.process.pid
        assert sagemaker.server_pool.idle_servers() == []
        assert sagemaker.server_pool.taken_warm == 1
        assert (
            "arn:aws:iam::123456789012:role/serving",
            "arn:aws:sagemaker:us-east-1:123456789012:model/serving",
        ) in access.assumed
        assert "arn:aws:iam::123456789012:role/serving ecr:BatchGetImage" in access.required
        assert sagemaker.invoke_endpoint("endpoint", b"5.1", "text/csv", "text/csv")[2] == b"setosa"
        # The warm server's output now goes to the endpoint's log, not the transform job's.
        assert sagemaker.invoke_endpoint("endpoint", b"\xff", "text/csv", "text/csv")[0] == 500
        endpoint_log = next((tmp_path / "endpoints").rglob("server.log"))
        wait_until(lambda: "UnicodeDecodeError" in endpoint_log.read_text())
        assert "UnicodeDecodeError" not in (tmp_path / "transform" / "score" / "server.log").read_text()
    finally:
        sagemaker.stop()
    assert exited(warm)
