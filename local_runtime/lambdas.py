"""Runs Lambda handlers in-process, with Lambda's context object and error contract.

Each function is imported from its own folder; the modules it brings (app.py and its helpers)
are kept out of ``sys.modules`` afterwards, so two functions never share a module by accident.
"""

from __future__ import annotations

import contextvars
import importlib.util
import io
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers

from local_runtime.access import Principal
from local_runtime.template import ACCOUNT, REGION

# The function whose handler runs in this thread: its SDK calls carry its role's credentials.
RUNNING_AS: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("RUNNING_AS", default=None)
_CREDENTIAL = re.compile(r"Credential=[^/]+/")


def _sign_as_running_function(request: Any, **_: Any) -> None:
    """Lambda gives each sandbox its role's credentials; in-process handlers share one environment,
    so their requests are re-attributed to the running function's role just before they are sent."""
    principal = RUNNING_AS.get()
    if principal is None or "Authorization" not in request.headers:
        return
    header = request.headers["Authorization"]
    text = header.decode() if isinstance(header, bytes) else header
    request.headers["Authorization"] = _CREDENTIAL.sub(f"Credential={principal.access_key}/", text)
    request.headers["X-Amz-Security-Token"] = principal.credentials["aws_session_token"]


def install_credential_hook() -> None:
    """Registers the hook for sessions created from now on and for boto3's default session."""
    entry = ("before-send", _sign_as_running_function)
    if entry not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register("before-send", _sign_as_running_function, unique_id="sfn-mlops-run-as")


@dataclass
class LambdaContext:
    """The context object handlers receive; Powertools reads these attributes."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_seconds: int = 3
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class Invocation:
    payload: Any
    function_error: str | None = None
    log: str = ""


# What the running invocation printed, for Invoke's ``LogType: Tail``.
_LOG: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("invocation_log", default=None)


class _InvocationLog(io.TextIOBase):
    """stdout that also keeps what each invocation writes, as Lambda's log stream does."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        log = _LOG.get()
        if log is not None:
            log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _keep_invocation_logs() -> None:
    """Tees stdout and every log handler's stream, wherever it was bound (Powertools binds it once)."""
    if not isinstance(sys.stdout, _InvocationLog):
        sys.stdout = _InvocationLog(sys.stdout)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler and not isinstance(handler.stream, _InvocationLog):
                handler.setStream(_InvocationLog(handler.stream))


class UnknownFunction(Exception):
    pass


class LocalFunction:
    def __init__(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        environment: dict[str, str],
        principal: Principal | None = None,
        **settings: Any,
    ) -> None:
        self.name = name
        self.principal = principal
        self.code_dir = code_dir
        self.module_name, self.handler_name = handler.rsplit(".", 1)
        self.environment = environment
        self.memory = int(settings.get("MemorySize", 128))
        self.timeout = int(settings.get("Timeout", 3))
        self._handler: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._handler is None:
                before = set(sys.modules)
                spec = importlib.util.spec_from_file_location(
                    f"local_lambda_{self.name}", self.code_dir / f"{self.module_name}.py"
                )
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.path.insert(0, str(self.code_dir))
                try:
                    spec.loader.exec_module(module)
                finally:
                    sys.path.remove(str(self.code_dir))
                    for name in set(sys.modules) - before:
                        origin = getattr(sys.modules[name], "__file__", None) or ""
                        if origin.startswith(str(self.code_dir)):
                            del sys.modules[name]
                self._handler = getattr(module, self.handler_name)
                _keep_invocation_logs()
        return self._handler

    def invoke(self, event: Any) -> Invocation:
        context = LambdaContext(self.name, memory_limit_in_mb=self.memory, timeout_seconds=self.timeout)
        request_id = context.aws_request_id
        token, log = RUNNING_AS.set(self.principal), io.StringIO()
        log_token = _LOG.set(log)
        started = time.perf_counter()
        log.write(f"START RequestId: {request_id} Version: $LATEST\n")
        try:
            invocation = Invocation(self._load()(event, context))
        except Exception as error:
            invocation = Invocation(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_exception(error)[-4:],
                },
                function_error="Unhandled",
            )
        finally:
            RUNNING_AS.reset(token)
            _LOG.reset(log_token)
        duration = (time.perf_counter() - started) * 1000
        log.write(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                  f"Memory Size: {self.memory} MB\n")  # fmt: skip
        invocation.log = log.getvalue()
        return invocation


class LambdaRuntime:
    """The functions of one local stack, looked up by name or ARN as Lambda's Invoke does."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.providers: dict[str, Any] = {}
        _keep_invocation_logs()

    def add(self, function: LocalFunction) -> None:
        """Registers a function. Handlers share one process's os.environ, so two functions that set a
        variable differently cannot run side by side; that is refused here."""
        for key, value in function.environment.items():
            other = next((f for f in self.functions.values() if f.environment.get(key, value) != value), None)
            if other:
                raise ValueError(
                    f"{function.name} and {other.name} set {key} differently; the local runtime needs one value"
                )
        self.functions[function.name] = function

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
