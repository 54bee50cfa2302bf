"""Functions run isolated as Lambda runs them: each in execution environments of its own, kept warm,
with its Timeout and MemorySize enforced and Lambda's error shapes for what goes wrong."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local_runtime.lambdas import LambdaRuntime, LocalFunction

COUNTER = """
    import os
    import time

    INVOCATIONS = 0

    def handler(event, context):
        global INVOCATIONS
        INVOCATIONS += 1
        time.sleep(event.get("sleep", 0))
        return {"invocations": INVOCATIONS, "pid": os.getpid(), "remaining": context.get_remaining_time_in_millis()}
"""

SERVICE_LOGGER = """
    import os

    from aws_lambda_powertools import Logger

    logger = Logger()

    def handler(event, context):
        logger.append_keys(caller_key=event["key"])
        logger.info("serving")
        return {"service": os.environ["POWERTOOLS_SERVICE_NAME"], "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
"""

NODE_HANDLERS = """
    let invocations = 0;

    export const promised = async (event, context) => {
      invocations += 1;
      console.log('promised', invocations);
      return { invocations, function: context.functionName, doubled: event.value * 2 };
    };

    export const called = (event, context, callback) => {
      setTimeout(() => callback(null, { calledBack: event.value }), 1);
    };

    export const throws = async () => {
      throw new RangeError('value out of range');
    };
"""


def _function_folder(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir()
    for file, source in files.items():
        (folder / file).write_text(textwrap.dedent(source))
    return folder


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    lambdas = LambdaRuntime()
    yield lambdas
    lambdas.close()


def _invoke(runtime: LambdaRuntime, name: str, event: dict[str, Any] | None = None) -> Any:
    return runtime.invoke(name, json.dumps(event or {}).encode())


def test_two_functions_each_see_their_own_service_name_and_log_keys(runtime, tmp_path) -> None:
    folder = _function_folder(tmp_path, "logger", {"app.py": SERVICE_LOGGER})
    runtime.add(LocalFunction("orders", folder, "app.handler", {"POWERTOOLS_SERVICE_NAME": "orders"}))
    runtime.add(LocalFunction("billing", folder, "app.handler", {"POWERTOOLS_SERVICE_NAME": "billing"}))

    orders = _invoke(runtime, "orders", {"key": "from-orders"})
    billing = _invoke(runtime, "billing", {"key": "from-billing"})

    assert orders.payload == {"service": "orders", "function": "orders"}
    assert billing.payload == {"service": "billing", "function": "billing"}
    billing_lines = [json.loads(line) for line in billing.log.splitlines() if line.startswith("{")]
    assert [line["service"] for line in billing_lines] == ["billing"]
    assert billing_lines[0]["caller_key"] == "from-billing" and "from-orders" not in billing.log


def test_module_state_persists_while_warm_and_a_concurrent_invocation_gets_its_own_worker(runtime, tmp_path) -> None:
    runtime.add(LocalFunction("counter", _function_folder(tmp_path, "counter", {"app.py": COUNTER}), "app.handler", {}))

    first, second = _invoke(runtime, "counter").payload, _invoke(runtime, "counter").payload
    assert (first["invocations"], second["invocations"]) == (1, 2) and first["pid"] == second["pid"]
    assert 0 < second["remaining"] <= 3000

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda _: _invoke(runtime, "counter", {"sleep": 0.5}).payload, range(2)))
    assert len({answer["pid"] for answer in together}) == 2
    assert sorted(answer["invocations"] for answer in together) == [1, 3]


def test_a_timeout_is_reported_as_lambda_reports_it_and_the_next_invocation_runs(runtime, tmp_path) -> None:
    folder = _function_folder(tmp_path, "slow", {"app.py": COUNTER})
    runtime.add(LocalFunction("slow", folder, "app.handler", {}, Timeout=1))
    warm = _invoke(runtime, "slow").payload

    timed_out = _invoke(runtime, "slow", {"sleep": 5})

    assert timed_out.function_error == "Unhandled"
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.\d\d seconds",
                        timed_out.payload["errorMessage"])  # fmt: skip
    assert "Task timed out after 1." in timed_out.log
    after = _invoke(runtime, "slow").payload
    # The timed-out environment was replaced: the next invocation starts from a fresh module.
    assert after["invocations"] == 1 and after["pid"] != warm["pid"]


def test_node_handlers_answer_with_promises_and_callbacks_and_fail_with_lambdas_error_shape(runtime, tmp_path) -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; the Node.js runtime needs it")
    folder = _function_folder(tmp_path, "node", {"index.mjs": NODE_HANDLERS})
    for export in ("promised", "called", "throws"):
        runtime.add(LocalFunction(export, folder, f"index.{export}", {}, Runtime="nodejs20.x"))

    promised = [_invoke(runtime, "promised", {"value": 21}) for _ in range(2)]
    assert [p.payload for p in promised] == [
        {"invocations": 1, "function": "promised", "doubled": 42},
        {"invocations": 2, "function": "promised", "doubled": 42},
    ]
    assert re.search(r"\tINFO\tpromised 2\n", promised[1].log)
    assert _invoke(runtime, "called", {"value": "yes"}).payload == {"calledBack": "yes"}
    thrown = _invoke(runtime, "throws")
    assert thrown.function_error == "Unhandled"
    assert thrown.payload["errorType"] == "RangeError" and thrown.payload["errorMessage"] == "value out of range"
    assert thrown.payload["trace"][0] == "RangeError: value out of range"


def test_a_function_over_its_memory_size_is_reported_as_a_runtime_exit(runtime, tmp_path) -> None:
    hog = """
        HELD = []

        def handler(event, context):
            if event.get("hog"):
                while True:
                    HELD.append(b"x" * 8_000_000)
            return "fine"
    """
    runtime.add(LocalFunction("hog", _function_folder(tmp_path, "hog", {"app.py": hog}), "app.handler", {},
                              MemorySize=128, Timeout=30))  # fmt: skip

    killed = _invoke(runtime, "hog", {"hog": True})

    assert killed.function_error == "Unhandled"
    assert killed.payload["errorType"] == "Runtime.ExitError"
    assert killed.payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert "Runtime.ExitError" in killed.log
    assert _invoke(runtime, "hog").payload == "fine"


def test_a_python_handler_that_raises_gets_lambdas_error_shape_and_stays_warm(runtime, tmp_path) -> None:
    source = """
        import os

        def handler(event, context):
            if event.get("fail"):
                raise KeyError("missing")
            return os.getpid()
    """
    runtime.add(LocalFunction("raises", _function_folder(tmp_path, "raises", {"app.py": source}), "app.handler", {}))
    pid = _invoke(runtime, "raises").payload

    failed = _invoke(runtime, "raises", {"fail": True})

    assert failed.function_error == "Unhandled"
    assert failed.payload["errorType"] == "KeyError" and failed.payload["errorMessage"] == "'missing'"
    assert 'in handler\n    raise KeyError("missing")\n' in failed.payload["stackTrace"][-1]
    assert _invoke(runtime, "raises").payload == pid


def test_a_module_that_cannot_be_imported_is_reported_as_lambda_reports_it(runtime, tmp_path) -> None:
    folder = _function_folder(tmp_path, "broken", {"app.py": "import no_such_module\n"})
    runtime.add(LocalFunction("broken", folder, "app.handler", {}))

    failed = _invoke(runtime, "broken")

    assert failed.payload["errorType"] == "Runtime.ImportModuleError"
    assert failed.payload["errorMessage"] == "Unable to import module 'app': No module named 'no_such_module'"


def test_closing_the_runtime_ends_every_worker(tmp_path) -> None:
    runtime = LambdaRuntime()
    runtime.add(LocalFunction("counter", _function_folder(tmp_path, "counter", {"app.py": COUNTER}), "app.handler", {}))
    with ThreadPoolExecutor(2) as pool:
        pids = {answer.payload["pid"] for answer in pool.map(lambda _: _invoke(runtime, "counter", {"sleep": 0.3}),
                                                               range(2))}  # fmt: skip
    assert len(pids) == 2

    runtime.close()

    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_python_worker_starts_with_the_sdk_imported_unless_its_package_ships_its_own(runtime, tmp_path) -> None:
    probe = """
        import sys

        SDK_WAS_LOADED = "boto3" in sys.modules

        def handler(event, context):
            import boto3

            return {"preloaded": SDK_WAS_LOADED, "shipped": getattr(boto3, "SHIPPED", False)}
    """
    runtime.add(LocalFunction("plain", _function_folder(tmp_path, "plain", {"app.py": probe}), "app.handler", {}))
    vendored = _function_folder(tmp_path, "vendored", {"app.py": probe})
    (vendored / "boto3").mkdir()
    (vendored / "boto3" / "__init__.py").write_text("SHIPPED = True\n")
    runtime.add(LocalFunction("vendored", vendored, "app.handler", {}))

    assert _invoke(runtime, "plain").payload == {"preloaded": True, "shipped": False}
    assert _invoke(runtime, "vendored").payload == {"preloaded": False, "shipped": True}
