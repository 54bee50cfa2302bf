"""Driving the local stack from tests: upload data, start and follow runs, act as the reviewer."""

from __future__ import annotations

import json
import time
from typing import Any

from asl_coverage import RECORDER
from botocore.exceptions import ClientError

from local_runtime import actions
from local_runtime.progress import ExecutionView, follow
from local_runtime.stack import LocalDeployment, wait_for

# Every failure after the run took its claims ends with these states, in this order.
FAILURE_TAIL = [
    "Give back data claim after failure",
    "Release lock after failure",
    "Explain the failure",
    "Notify failure",
    "Run failed",
]
# A refused execution input holds no claims: it goes straight to the explanation and the notification.
INPUT_REFUSED = ["Check run input", *FAILURE_TAIL[2:]]


def upload(stack: LocalDeployment, key: str, body: str) -> str:
    stack.client("s3").put_object(Bucket=stack.outputs["DataBucketName"], Key=key, Body=body.encode())
    return f"s3://{stack.outputs['DataBucketName']}/{key}"


def iris(every: int = 1, extra_lines: list[str] | None = None) -> str:
    return actions.iris_csv(every) + "".join(line + "\n" for line in extra_lines or [])


def start(stack: LocalDeployment, run_input: dict[str, Any]) -> str:
    sfn = stack.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=stack.state_machine_arn, input=json.dumps(run_input))["executionArn"]


def start_test_case(stack: LocalDeployment, case: str, run_input: dict[str, Any]) -> str:
    """Starts a run of a mock-config test case, selected as with Step Functions Local: "<arn>#<case>"."""
    sfn = stack.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=f"{stack.state_machine_arn}#{case}", input=json.dumps(run_input))[
        "executionArn"
    ]


CURRENT_TEST = "unknown test"
MACHINE = ":execution:mlops-mlops"


def finish(stack: LocalDeployment, execution_arn: str, timeout: float = 300) -> ExecutionView:
    """Follows the execution to its end and records the states and branches it took."""
    view = follow(stack.client("stepfunctions"), execution_arn, poll_seconds=0.2, timeout=timeout)
    if MACHINE in execution_arn:
        RECORDER.record(CURRENT_TEST, [(run.name, run.error) for run in view.states])
    return view


STATUS_LOOP = ["Wait for endpoint", "Check endpoint status", "Is the endpoint live?"]


def path(view: ExecutionView) -> list[str]:
    """The states in order, with the endpoint-status loop shown once however often it polled."""
    names = [run.name for run in view.states]
    size = len(STATUS_LOOP)
    index = 0
    while index + 2 * size <= len(names):
        if names[index : index + size] == STATUS_LOOP and names[index + size : index + 2 * size] == STATUS_LOOP:
            del names[index : index + size]
        else:
            index += 1
    return names


def output(stack: LocalDeployment, execution_arn: str) -> dict[str, Any]:
    return json.loads(
        stack.client("stepfunctions").describe_execution(executionArn=execution_arn).get("output") or "{}"
    )


def wait_for_state(stack: LocalDeployment, execution_arn: str, state: str, timeout: float = 120) -> None:
    sfn = stack.client("stepfunctions")

    def entered() -> bool:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return any((e.get("stateEnteredEventDetails") or {}).get("name") == state for e in events)

    wait_for(entered, timeout, what=f"state {state!r}")


def review_email(stack: LocalDeployment, timeout: float = 180) -> dict[str, Any]:
    """Waits for the review email and returns it; other messages read meanwhile are kept in ``stack.mail``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in stack.read_inbox():
            stack.mail.append(message)
            if actions.review_link(message.get("Message", "")):
                return message
        time.sleep(0.2)
    raise TimeoutError("no review email arrived")


def outcomes_mailed(stack: LocalDeployment) -> list[str]:
    stack.mail.extend(stack.read_inbox())
    return [
        m["MessageAttributes"]["outcome"]["Value"] for m in stack.mail if "outcome" in m.get("MessageAttributes", {})
    ]


def registry(stack: LocalDeployment) -> dict[tuple[str, str], dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=stack.outputs["ModelRegistryTableName"], ConsistentRead=True)[
        "Items"
    ]
    return {(i["pk"]["S"], i["sk"]["S"]): {k: next(iter(v.values())) for k, v in i.items()} for i in items}


def endpoint(stack: LocalDeployment) -> dict[str, Any] | None:
    try:
        return stack.client("sagemaker").describe_endpoint(EndpointName=stack.outputs["EndpointName"])
    except ClientError:
        return None
