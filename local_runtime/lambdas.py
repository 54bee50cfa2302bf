"""Runs Lambda functions as Lambda does: each in execution environments of its own.

An execution environment is a worker process started from a small runtime bootstrap
(``lambda_runtimes/``) for the function's runtime (Python or Node.js), with the environment Lambda gives
it: the template's variables, Lambda's reserved ones, and credentials that name the function's role. A
worker imports the handler once and serves one invocation at a time; it is kept while warm, so module
state persists between invocations, and a second concurrent invocation gets a second worker. The
function's Timeout and MemorySize are enforced: the worker is killed and Lambda's error is returned.

Local providers (Python callables that stand in for service integrations) run in this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_runtime.access import Principal
from local_runtime.template import ACCOUNT, REGION
from local_runtime.warm_python import WarmProcess, WarmPython

BOOTSTRAPS = Path(__file__).parent / "lambda_runtimes"
MARK = b"\x1e"  # the bootstrap's line that closes an invocation's log
# Lambda gives init 10 seconds of its own before the function's timeout applies.
INIT_SECONDS = 10
# How often a busy worker's memory is looked at; a hog may outgrow its limit by what it allocates meanwhile.
MEMORY_POLL_SECONDS = 0.01
# What Go (Lambda's runtime interface) calls the signals a runtime may die of.
SIGNAL_NAMES = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
                signal.SIGABRT: "aborted", signal.SIGBUS: "bus error"}  # fmt: skip
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Python functions' execution environments fork from this, with the SDK and Powertools already imported
# (as `python -I`: the handler sees its own folder and the installed packages, not this project).
FUNCTION_PYTHON = WarmPython(
    (
        "boto3",
        "botocore.exceptions",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.parameters",
        "aws_lambda_powertools.utilities.typing",
    ),
    isolated=True,
)


@dataclass
class Invocation:
    payload: Any
    function_error: str | None = None
    log: str = ""


class UnknownFunction(Exception):
    pass


class _WorkerDied(Exception):
    """The runtime process ended (or was ended) before it answered."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TimedOut(Exception):
    pass


class _Worker:
    """One execution environment: a runtime process, its control socket and its log pipe."""

    def __init__(self, function: LocalFunction, log: list[str]) -> None:
        self.function = function
        self.log: list[str] | None = log
        self.marks: set[str] = set()
        self.marked = threading.Condition()
        self._buffer = b""
        parent, child = socket.socketpair()
        self.channel = parent
        self.process: subprocess.Popen[bytes] | WarmProcess
        try:
            if function.warm():
                self.process = FUNCTION_PYTHON.popen(
                    [str(BOOTSTRAPS / "python_bootstrap.py"), "3"],  # the control socket arrives as 3
                    function.code_dir,
                    function.worker_environment(),
                    subprocess.PIPE,
                    subprocess.STDOUT,
                    pass_fds=(child.fileno(),),
                )
            else:
                self.process = subprocess.Popen(
                    [*function.command(), str(child.fileno())],
                    env=function.worker_environment(),
                    cwd=function.code_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=(child.fileno(),),
                )
        finally:
            child.close()
        self.logs = threading.Thread(target=self._read_log, daemon=True, name=f"lambda-log-{function.name}")
        self.logs.start()

    def _read_log(self) -> None:
        """Lambda sends a function's output to its log stream; locally it goes to this process's stdout (the
        service log under the CLI) and to the invocation's own log, for ``LogType: Tail``."""
        assert self.process.stdout
        for raw in self.process.stdout:
            text, mark, rest = raw.partition(MARK)
            if text:
                line = text.decode(errors="replace")
                if mark and not line.endswith("\n"):
                    line += "\n"
                with self.marked:
                    if self.log is not None:
                        self.log.append(line)
                with contextlib.suppress(ValueError):  # stdout closed under us (the CLI is exiting)
                    sys.stdout.write(line)
            if mark:
                with self.marked:
                    self.marks.add(rest.decode().strip())
                    self.marked.notify_all()
        with self.marked:
            self.marks.add("")  # the pipe closed: no mark will come
            self.marked.notify_all()

    def wait_for_log(self, mark: str, seconds: float = 2.0) -> None:
        with self.marked:
            self.marked.wait_for(lambda: mark in self.marks or "" in self.marks, seconds)
            self.marks.discard(mark)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            raise _WorkerDied(self._exit_reason()) from None

    def receive(self, deadline: float) -> dict[str, Any]:
        """The runtime's next message; watches its memory while waiting, as Lambda's cgroup limit would."""
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TimedOut
            self.channel.settimeout(min(left, MEMORY_POLL_SECONDS))
            try:
                chunk = self.channel.recv(65536)
            except TimeoutError:
                if self.resident_mb() > self.function.memory:
                    self.kill()
                    raise _WorkerDied(self._exit_reason()) from None
                continue
            if not chunk:
                raise _WorkerDied(self._exit_reason())
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def resident_mb(self) -> float:
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                return int(statm.read().split()[1]) * PAGE_BYTES / 2**20
        except (OSError, IndexError, ValueError):
            return 0.0

    def peak_mb(self) -> int:
        """What Lambda's REPORT line calls Max Memory Used: the environment's high-water mark."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                line = next(line for line in status if line.startswith("VmHWM:"))
            return int(line.split()[1]) // 1024
        except (OSError, StopIteration, ValueError):
            return 0

    def _exit_reason(self) -> str:
        try:
            code = self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        if code < 0:
            return f"Runtime exited with error: signal: {SIGNAL_NAMES.get(-code, signal.Signals(-code).name)}"
        if code > 0:
            return f"Runtime exited with error: exit status {code}"
        return "Runtime exited without providing a reason"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        self.kill()
        self.process.wait()
        self.channel.close()
        self.logs.join(2)
        if self.process.stdout:
            self.process.stdout.close()


class LocalFunction:
    """A function of the template and its execution environments (warm workers kept for reuse)."""

    def __init__(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        environment: dict[str, str],
        principal: Principal | None = None,
        endpoint_url: str | None = None,
        **settings: Any,
    ) -> None:
        self.name = name
        self.principal = principal
        self.code_dir = code_dir
        self.handler = handler
        self.environment = environment
        self.endpoint_url = endpoint_url
        self.runtime = str(settings.get("Runtime", "python3.13"))
        if not self.runtime.startswith(("python3", "nodejs")):
            raise ValueError(f"{name}: the local runtime runs Python and Node.js functions, not {self.runtime}")
        self.memory = int(settings.get("MemorySize", 128))
        self.timeout = float(settings.get("Timeout", 3))
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"

    def warm(self) -> bool:
        """Python workers fork from FUNCTION_PYTHON, unless the package ships its own copy of a library that
        is preloaded there: then a fresh interpreter imports the package's copy, as Lambda would."""
        if not self.runtime.startswith("python"):
            return False
        shipped = {path.name.removesuffix(".py") for path in self.code_dir.iterdir()}
        return not shipped & {module.split(".")[0] for module in FUNCTION_PYTHON.preload}

    def command(self) -> list[str]:
        """The runtime a cold worker starts."""
        if self.runtime.startswith("nodejs"):
            return ["node", str(BOOTSTRAPS / "node_bootstrap.cjs")]
        # -I: the handler sees its own folder and the installed packages, not this project or PYTHON* variables.
        return [sys.executable, "-I", str(BOOTSTRAPS / "python_bootstrap.py")]

    def worker_environment(self) -> dict[str, str]:
        """What Lambda puts in an execution environment: the function's variables, then the reserved ones
        (which a function cannot override), with credentials that name its role."""
        credentials = self.principal.credentials if self.principal else {
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "aws_session_token": os.environ.get("AWS_SESSION_TOKEN", "testing"),
        }  # fmt: skip
        runtime_name = self.runtime.replace(".x", "")
        return {
            **self.environment,
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime_name}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAPS),
            # Not Lambda's: the SDKs in the function reach the local endpoint instead of AWS's.
            **({"AWS_ENDPOINT_URL": self.endpoint_url} if self.endpoint_url else {}),
        }

    def _take_worker(self, log: list[str]) -> tuple[_Worker, bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the deployment is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    worker.log = log
                    self._busy.add(worker)
                    return worker, False
                worker.close()
            worker = _Worker(self, log)
            self._busy.add(worker)
            return worker, True

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        with worker.marked:
            worker.log = None
        with self._lock:
            self._busy.discard(worker)
            if healthy and not self._closed and worker.alive():
                self._idle.append(worker)
                return
        worker.close()

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        log: list[str] = [f"START RequestId: {request_id} Version: $LATEST\n"]
        started = time.perf_counter()
        worker, cold = self._take_worker(log)
        healthy, sent = False, started
        try:
            if cold:
                init = worker.receive(time.monotonic() + INIT_SECONDS + self.timeout)
                worker.wait_for_log("init")
                if "init_error" in init:
                    raise _InitFailed(init["init_error"])
            deadline, sent = time.monotonic() + self.timeout, time.perf_counter()
            worker.send(
                {
                    "event": event,
                    "request_id": request_id,
                    "invoked_function_arn": self.arn,
                    "deadline_ms": int(time.time() * 1000 + self.timeout * 1000),
                }
            )
            answer = worker.receive(deadline)
            worker.wait_for_log(request_id)
            healthy = True
            if "error" in answer:
                # The Python runtimes add the request id to the error; the Node.js ones do not.
                error = (
                    answer["error"]
                    if self.runtime.startswith("nodejs")
                    else {**answer["error"], "requestId": request_id}
                )
                invocation = Invocation(error, function_error="Unhandled")
            else:
                invocation = Invocation(json.loads(answer["result"]))
        except _InitFailed as failure:
            invocation = Invocation({**failure.error, "requestId": request_id}, function_error="Unhandled")
        except _TimedOut:
            seconds = time.perf_counter() - sent
            message = f"Task timed out after {seconds:.2f} seconds"
            log.append(f"{datetime.now(UTC).isoformat(timespec='milliseconds')[:-6]}Z {request_id} {message}\n")
            invocation = Invocation(
                {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: {message}"},
                function_error="Unhandled",
            )
        except _WorkerDied as death:
            worker.wait_for_log(request_id, 0.5)
            log.append(f"RequestId: {request_id} Error: {death.reason}\nRuntime.ExitError\n")
            invocation = Invocation(
                {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: {death.reason}"},
                function_error="Unhandled",
            )
        finally:
            peak = worker.peak_mb()
            self._give_back(worker, healthy)
        duration = (time.perf_counter() - started) * 1000
        log.append(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                   f"Memory Size: {self.memory} MB\tMax Memory Used: {peak} MB\n")  # fmt: skip
        invocation.log = "".join(log)
        return invocation

    def close(self) -> None:
        """Ends every execution environment, busy ones included: no worker outlives the deployment."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.close()


class _InitFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("errorMessage"))
        self.error = error


class LambdaRuntime:
    """The functions of one local stack, looked up by name or ARN as Lambda's Invoke does."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.providers: dict[str, Any] = {}

    def add(self, function: LocalFunction) -> None:
        """Registers a function; it starts no worker until it is invoked, as Lambda starts none on deploy."""
        self.functions[function.name] = function

    def close(self) -> None:
        """Stops every function's workers."""
        for function in self.functions.values():
            function.close()

    def add_provider(self, name: str, handler: Any) -> str:
        """A built-in function that stands in for a service integration; returns its ARN."""
        self.providers[name] = handler
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    @staticmethod
    def _name(function_name: str) -> str:
        name = function_name.split(":function:", 1)[-1]
        return name.split(":", 1)[0]

    def exists(self, function_name: str) -> bool:
        return self._name(function_name) in self.functions or self.is_provider(function_name)

    def is_provider(self, function_name: str) -> bool:
        return self._name(function_name) in self.providers

    def invoke(self, function_name: str, payload: bytes, caller: Principal | None = None) -> Invocation:
        """Runs the function; a provider also learns who called it, to act with that principal's rights."""
        name = self._name(function_name)
        event = json.loads(payload) if payload else {}
        if name in self.providers:
            try:
                return Invocation(self.providers[name](event, caller))
            except ProviderError as error:
                return Invocation({"errorType": error.error, "errorMessage": error.cause}, function_error="Unhandled")
        if name not in self.functions:
            raise UnknownFunction(name)
        return self.functions[name].invoke(event)


# What a provider returns when the outcome comes later, from someone else (an activity worker), or never (a
# mocked States.Timeout): nothing is sent to the task's token.
NO_ANSWER: Any = type("NoAnswer", (), {"__repr__": lambda self: "NO_ANSWER"})()


class ProviderError(Exception):
    """A failure of a local service provider, with the error name the real integration reports."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause
