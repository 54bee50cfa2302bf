from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

# Test helpers (asl.py, handlers.py) are plain modules in this folder, and each function's pure
# modules (gate.py, payload.py, ...) have unique names, so tests import them directly.
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
sys.path.extend(str(folder) for folder in sorted((TESTS.parent / "functions").iterdir()) if folder.is_dir())

from asl import ROOT  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

REGION = "us-east-1"


# ---------------------------------------------------------------- the browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Kept after the run (git ignores it), so a person can look at what the reviewer saw.
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "review-pages"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium"):
        pytest.skip("SKIPPED LOUDLY: Debian's chromium is not installed (make test installs it under CI=true)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """moto for every AWS call in the test, with Step Functions executing definitions."""
    from moto import mock_aws

    from local_runtime.jsonata_engine import install as install_jsonata

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,  # Lambda's runtime always sets it
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "sfn-mlops-tests",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    install_jsonata()  # moto's ASL engine evaluates JSONata through our hook
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def create_table_from_template(logical_id: str, table_name: str) -> Any:
    """Creates a moto table with the key schema that template.yaml declares, so the two never drift."""
    properties = yaml_parse((ROOT / "template.yaml").read_text())["Resources"][logical_id]["Properties"]
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    return boto3.resource("dynamodb", region_name=REGION).Table(table_name)


@pytest.fixture
def approvals(aws, monkeypatch):
    monkeypatch.setenv("APPROVALS_TABLE", "approvals")
    return create_table_from_template("ApprovalsTable", "approvals")


@pytest.fixture
def registry(aws, monkeypatch):
    monkeypatch.setenv("REGISTRY_TABLE", "registry")
    return create_table_from_template("ModelRegistryTable", "registry")


class Inbox:
    """An SQS queue subscribed to the notification topic: what an email subscriber would receive."""

    def __init__(self, topic_arn: str) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.url = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def messages(self) -> list[dict[str, Any]]:
        import json

        received = []
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            received += [json.loads(m["Body"]) for m in batch]
            for m in batch:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return received


@pytest.fixture
def inbox(aws, monkeypatch) -> Inbox:
    topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="notifications")["TopicArn"]
    monkeypatch.setenv("TOPIC_ARN", topic_arn)
    return Inbox(topic_arn)


# ---------------------------------------------------------------- ASL coverage
@pytest.fixture(autouse=True)
def _name_the_running_test(request) -> None:
    import pipeline

    pipeline.CURRENT_TEST = request.node.nodeid


def _recorder():
    from asl_coverage import RECORDER

    return RECORDER


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    import os

    recorder = _recorder()
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: the controller merges every worker's and reports
        worker_output["asl_coverage"] = recorder.export()
        return
    report = recorder.report()
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "asl-coverage.txt").write_text(report + "\n")
    if os.environ.get("ASL_COVERAGE_REQUIRED") == "1" and recorder.gaps() and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    exported = getattr(node, "workeroutput", {}).get("asl_coverage")
    if exported:
        _recorder().merge(exported)


def pytest_terminal_summary(terminalreporter) -> None:
    import os

    recorder = _recorder()
    gaps = recorder.gaps()
    terminalreporter.section("ASL coverage")
    terminalreporter.write_line(recorder.report().splitlines()[-1] + " (full report: build/asl-coverage.txt)")
    for gap in gaps:
        terminalreporter.write_line(f"never exercised: {gap}")
    if gaps and os.environ.get("ASL_COVERAGE_REQUIRED") == "1":
        terminalreporter.write_line("FAILED: every state and branch must be exercised (ASL_COVERAGE_REQUIRED=1)")
