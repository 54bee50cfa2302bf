"""A Lambda execution environment's Python runtime: imports the handler once, then runs invocations.

Started by ``local_runtime.lambdas`` as its own process, with the function's environment. Invocations
arrive on the socket whose descriptor is the first argument, one JSON line each, and each answer goes
back the same way. After every answer the runtime writes a mark line to stdout, so the parent knows
which log lines belong to which invocation. This file imports nothing from the project: the handler
must see only what a Lambda environment has.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
from typing import Any

MARK = "\x1e"  # starts the line that closes an invocation's log


class LambdaContext:
    """The context object the python3.x runtimes pass to handlers."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _error(error: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)
    # The runtime's own frames are not the function's; Lambda's stack trace starts in the handler.
    frames = [frame for frame in frames if frame.filename != __file__]
    return {
        "errorMessage": message if message is not None else str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _close_log(mark: str) -> None:
    sys.stderr.flush()
    sys.stdout.flush()
    os.write(1, f"{MARK}{mark}\n".encode())


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _load_handler() -> Any:
    module_name, handler_name = os.environ["_HANDLER"].rsplit(".", 1)
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _InitError(
            error, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from error
    except SyntaxError as error:
        raise _InitError(
            error, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}"
        ) from error
    handler = getattr(module, handler_name, None)
    if handler is None:
        message = f"Handler '{handler_name}' missing on module '{module_name}'"
        raise _InitError(AttributeError(message), "Runtime.HandlerNotFound", message)
    return handler


class _InitError(Exception):
    def __init__(self, cause: BaseException, error_type: str, message: str) -> None:
        super().__init__(message)
        self.cause, self.error_type, self.message = cause, error_type, message


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    try:
        handler = _load_handler()
    except _InitError as error:
        failure = _error(error.cause, error.error_type, error.message)
    except Exception as error:  # an exception while the module runs its top level
        failure = _error(error)
    else:
        failure = None
    if failure is not None:
        print(f"[ERROR] {failure['errorType']}: {failure['errorMessage']}", file=sys.stderr)
        _close_log("init")
        _send(channel, {"init_error": failure})
        return
    _close_log("init")
    _send(channel, {"ready": True})
    for line in channel.makefile("rb"):
        request = json.loads(line)
        answer: dict[str, Any]
        try:
            value = handler(request["event"], LambdaContext(request))
        except Exception as error:
            answer = {"error": _error(error)}
        else:
            try:
                answer = {"result": json.dumps(value)}
            except (TypeError, ValueError) as error:
                answer = {"error": _error(error, "Runtime.MarshalError", f"Unable to marshal response: {error}")}
        if "error" in answer:
            failure = answer["error"]
            print(f"[ERROR] {failure['errorType']}: {failure['errorMessage']}", file=sys.stderr)
            print("Traceback (most recent call last):\n" + "".join(failure["stackTrace"]), end="", file=sys.stderr)
        _close_log(request["request_id"])
        _send(channel, answer)


if __name__ == "__main__":
    main()
