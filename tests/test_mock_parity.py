"""The local runtime's mocked service integrations behave as Step Functions Local's, and activities run offline.

Each test registers a small machine of its own on one local stack, adds its test cases to the stack's
mock config, and starts executions as Step Functions Local takes them: ``<machine ARN>#<TestCase>``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from asl import ROOT

from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

EXAMPLE = ROOT / "examples" / "aws-mocking-example"


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as local:
        yield local


def _machine(stack: LocalDeployment, name: str, definition: dict[str, Any]) -> str:
    sfn = stack.client("stepfunctions")
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=stack.state_machine_role)[
        "stateMachineArn"
    ]


def _finish(stack: LocalDeployment, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise TimeoutError(f"{execution_arn} still running after {timeout}s")


def _history(stack: LocalDeployment, execution_arn: str) -> list[dict[str, Any]]:
    return stack.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]


def _run_case(stack: LocalDeployment, machine_arn: str, case: str, run_input: Any = None, **kwargs: Any) -> str:
    sfn = stack.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=f"{machine_arn}#{case}", input=json.dumps(run_input or {}), **kwargs)[
        "executionArn"
    ]


def _task(resource: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, **fields}


SNS = "arn:aws:states:::sns:publish"
TOPIC = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:nowhere", "Message": "hello"}


def _send_retried_and_caught(error: str, attempts: int, caught: str) -> dict[str, Any]:
    """A machine whose one SNS task retries ``error`` and then catches it, ending in the Pass ``caught``."""
    return {
        "StartAt": "Send",
        "States": {
            "Send": _task(
                SNS,
                Parameters=TOPIC,
                Retry=[{"ErrorEquals": [error], "MaxAttempts": attempts, "IntervalSeconds": 1}],
                Catch=[{"ErrorEquals": [error], "Next": caught}],
                End=True,
            ),
            caught: {"Type": "Pass", "End": True},
        },
    }


# ---------------------------------------------------------------- Parallel and Map
def test_states_inside_parallel_branches_and_map_iterations_answer_from_the_mock(stack) -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": _task(SNS, Parameters=TOPIC, End=True)}},
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "MaxConcurrency": 1,
                                "ItemProcessor": {
                                    "ProcessorConfig": {"Mode": "INLINE"},
                                    "StartAt": "Inner",
                                    "States": {"Inner": _task(SNS, Parameters=TOPIC, End=True)},
                                },
                                "End": True,
                            }
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    arn = _machine(stack, "nested-mocks", definition)
    stack.mocks.add(
        {
            "StateMachines": {"nested-mocks": {"TestCases": {"Nested": {"Left": "LeftSent", "Inner": "InnerSent"}}}},
            "MockedResponses": {
                "LeftSent": {"0": {"Return": {"MessageId": "left"}}},
                "InnerSent": {"0-1": {"Return": {"MessageId": "inner-first"}}, "2": {"Return": {"MessageId": "third"}}},
            },
        }
    )
    described = _finish(stack, _run_case(stack, arn, "Nested", {"items": [1, 2, 3]}))
    assert described["status"] == "SUCCEEDED", described
    left, inner = json.loads(described["output"])
    assert left == {"MessageId": "left"}
    assert [item["MessageId"] for item in inner] == ["inner-first", "inner-first", "third"]


# ---------------------------------------------------------------- errors
def test_a_mocked_states_timeout_reaches_retry_and_catch_by_that_name(stack) -> None:
    arn = _machine(stack, "timeout-mock", _send_retried_and_caught("States.Timeout", 1, "TimedOut"))
    stack.mocks.add(
        {
            "StateMachines": {"timeout-mock": {"TestCases": {"Slow": {"Send": "NeverAnswers"}}}},
            "MockedResponses": {"NeverAnswers": {"0-1": {"Throw": {"Error": "States.Timeout", "Cause": "slow"}}}},
        }
    )
    execution = _run_case(stack, arn, "Slow")
    described = _finish(stack, execution)
    assert described["status"] == "SUCCEEDED", described
    events = _history(stack, execution)
    assert [e["type"] for e in events].count("TaskTimedOut") == 2  # the first attempt and its retry
    assert [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "PassStateEntered"] == ["TimedOut"]


def test_a_mocked_throw_reports_its_cause_exactly_as_given(stack) -> None:
    cause = 'Rate exceeded {"retryAfter": 3}'
    definition = {"StartAt": "Send", "States": {"Send": _task(SNS, Parameters=TOPIC, End=True)}}
    arn = _machine(stack, "cause-mock", definition)
    stack.mocks.add(
        {
            "StateMachines": {"cause-mock": {"TestCases": {"Throttled": {"Send": "Throttled"}}}},
            "MockedResponses": {"Throttled": {"0": {"Throw": {"Error": "SNS.ThrottledException", "Cause": cause}}}},
        }
    )
    execution = _run_case(stack, arn, "Throttled")
    described = _finish(stack, execution)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "SNS.ThrottledException", cause)
    failed = next(e["taskFailedEventDetails"] for e in _history(stack, execution) if e["type"] == "TaskFailed")
    assert failed["cause"] == cause


def test_a_missing_mocked_response_fails_the_execution_without_retrying(stack) -> None:
    arn = _machine(stack, "missing-mock", _send_retried_and_caught("States.ALL", 3, "Caught"))
    stack.mocks.add(
        {
            "StateMachines": {"missing-mock": {"TestCases": {"OneAnswer": {"Send": "FailsOnce"}}}},
            "MockedResponses": {"FailsOnce": {"0": {"Throw": {"Error": "SNS.InternalError", "Cause": "down"}}}},
        }
    )
    execution = _run_case(stack, arn, "OneAnswer")
    started = time.monotonic()
    described = _finish(stack, execution)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"
    assert "FailsOnce has no response for invocation 1 of 'Send'" in described["cause"]
    types = [e["type"] for e in _history(stack, execution)]
    assert types.count("TaskScheduled") == 2  # the first attempt, then one retry that found no response
    assert "PassStateEntered" not in types
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------- the history
def test_the_history_of_a_mocked_task_names_the_mocked_service_and_its_parameters(stack) -> None:
    definition = {"StartAt": "Send", "States": {"Send": _task(SNS, Parameters={**TOPIC, "Subject.$": "$.s"}, End=True)}}
    arn = _machine(stack, "history-mock", definition)
    stack.mocks.add(
        {
            "StateMachines": {"history-mock": {"TestCases": {"Sent": {"Send": "Sent"}}}},
            "MockedResponses": {"Sent": {"0": {"Return": {"MessageId": "m-1"}}}},
        }
    )
    execution = _run_case(stack, arn, "Sent", {"s": "subject"})
    assert _finish(stack, execution)["status"] == "SUCCEEDED"
    events = _history(stack, execution)
    task_events = [e for e in events if e["type"].startswith("Task") and not e["type"].startswith("TaskState")]
    assert [e["type"] for e in task_events] == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]
    for event in task_events:
        details = next(v for k, v in event.items() if k.endswith("EventDetails"))
        assert (details["resourceType"], details["resource"]) == ("sns", "publish")
    assert json.loads(task_events[0]["taskScheduledEventDetails"]["parameters"]) == {**TOPIC, "Subject": "subject"}
    assert json.loads(task_events[-1]["taskSucceededEventDetails"]["output"]) == {"MessageId": "m-1"}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["previousEventId"] < e["id"] for e in events)


# ---------------------------------------------------------------- execution ARNs
def test_a_test_case_execution_has_the_original_machines_execution_arn(stack) -> None:
    definition = {"StartAt": "Send", "States": {"Send": _task(SNS, Parameters=TOPIC, End=True)}}
    arn = _machine(stack, "arn-mock", definition)
    stack.mocks.add(
        {
            "StateMachines": {"arn-mock": {"TestCases": {"Sent": {"Send": "Sent"}}}},
            "MockedResponses": {"Sent": {"0": {"Return": {"MessageId": "m-1"}}}},
        }
    )
    sfn = stack.client("stepfunctions")
    execution = _run_case(stack, arn, "Sent", name="first-run")
    assert execution == "arn:aws:states:us-east-1:123456789012:execution:arn-mock:first-run"
    described = _finish(stack, execution)
    assert (described["executionArn"], described["stateMachineArn"]) == (execution, arn)
    assert described["status"] == "SUCCEEDED"
    started = next(e for e in _history(stack, execution) if e["type"] == "ExecutionStarted")
    assert started["executionStartedEventDetails"]["roleArn"] == stack.state_machine_role
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [(e["executionArn"], e["stateMachineArn"]) for e in listed] == [(execution, arn)]
    assert sfn.describe_state_machine_for_execution(executionArn=execution)["stateMachineArn"] == arn
    assert arn in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    assert not [m for m in sfn.list_state_machines()["stateMachines"] if "--" in m["name"]]
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        _run_case(stack, arn, "Sent", name="first-run")


# ---------------------------------------------------------------- AWS's own example
@pytest.fixture(scope="module")
def lambda_sqs_integration(stack) -> str:
    stack.mocks.add(json.loads((EXAMPLE / "MockConfigFile.json").read_text()))
    definition = json.loads((EXAMPLE / "statemachine.asl.json").read_text())
    # HybridPath sends to the real queue; LambdaState is mocked in every case, so no function is needed.
    queue = stack.client("sqs").create_queue(QueueName="myQueue")["QueueUrl"]
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    # Local executions all run with the stack's state machine role (see README); on AWS the example's own
    # role would carry this permission.
    role = stack.state_machine_role
    send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn["QueueArn"]}
    stack.access.add_role(role, [*stack.access.policies[role], {"Version": "2012-10-17", "Statement": [send]}])
    return _machine(stack, "LambdaSQSIntegration", definition)


def test_aws_example_happy_path_answers_both_states_from_the_mock(stack, lambda_sqs_integration) -> None:
    described = _finish(stack, _run_case(stack, lambda_sqs_integration, "HappyPath", {"hello": "world"}))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
        "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51",
    }


def test_aws_example_retry_path_retries_three_times_then_succeeds(stack, lambda_sqs_integration) -> None:
    execution = _run_case(stack, lambda_sqs_integration, "RetryPath", {"hello": "world"})
    described = _finish(stack, execution, timeout=60)
    assert described["status"] == "SUCCEEDED"
    events = _history(stack, execution)
    failures = [(e["taskFailedEventDetails"]["error"], e["taskFailedEventDetails"]["cause"])
                for e in events if e["type"] == "TaskFailed"]  # fmt: skip
    assert failures == [
        ("Lambda.ResourceNotReadyException", "Lambda resource is not ready."),
        ("Lambda.TimeoutException", "Lambda timed out."),
        ("Lambda.TimeoutException", "Lambda timed out."),
    ]
    scheduled = [e for e in events if e["type"] == "TaskScheduled"]
    assert [e["taskScheduledEventDetails"]["resource"] for e in scheduled] == ["invoke"] * 4 + ["sendMessage"]
    # The retrier's back-off: 2, 4 and 8 seconds between the attempts.
    gaps = [(b["timestamp"] - a["timestamp"]).total_seconds() for a, b in itertools.pairwise(scheduled[:4])]
    assert [round(gap) for gap in gaps] == [2, 4, 8]


def test_aws_example_hybrid_path_sends_the_real_message(stack, lambda_sqs_integration) -> None:
    described = _finish(stack, _run_case(stack, lambda_sqs_integration, "HybridPath", {"hello": "world"}))
    assert described["status"] == "SUCCEEDED", described
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="myQueue")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    # LambdaState's mocked result is the message body SQSState sent.
    assert [json.loads(m["Body"]) for m in messages] == [
        {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}
    ]
    assert json.loads(described["output"])["MessageId"] == messages[0]["MessageId"]


# ---------------------------------------------------------------- activities
ACTIVITY_MACHINE = {
    "StartAt": "Ask a worker",
    "States": {
        "Ask a worker": {
            "Type": "Task",
            "Resource": "ACTIVITY",
            "Parameters": {"question.$": "$.question"},
            "TimeoutSeconds": 30,
            "End": True,
        }
    },
}


@pytest.fixture(scope="module")
def activity(stack) -> tuple[str, str]:
    sfn = stack.client("stepfunctions")
    activity_arn = sfn.create_activity(name="answer-questions")["activityArn"]
    definition = json.loads(json.dumps(ACTIVITY_MACHINE).replace("ACTIVITY", activity_arn))
    return activity_arn, _machine(stack, "activity-machine", definition)


def _worker(stack: LocalDeployment, activity_arn: str, answer: Any) -> threading.Thread:
    def work() -> None:
        sfn = stack.client("stepfunctions")
        task = sfn.get_activity_task(activityArn=activity_arn, workerName="test-worker")
        question = json.loads(task["input"])["question"]
        sfn.send_task_heartbeat(taskToken=task["taskToken"])
        answer(sfn, task["taskToken"], question)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_an_activity_worker_gets_the_task_and_its_output_ends_the_execution(stack, activity) -> None:
    activity_arn, machine = activity
    worker = _worker(
        stack, activity_arn, lambda sfn, token, question: sfn.send_task_success(
            taskToken=token, output=json.dumps({"answer": question.upper()}))
    )  # fmt: skip
    execution = stack.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps({"question": "why"})
    )["executionArn"]
    described = _finish(stack, execution)
    worker.join(5)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"answer": "WHY"}


def test_an_activity_worker_failure_fails_the_execution_with_its_error(stack, activity) -> None:
    activity_arn, machine = activity
    _worker(
        stack, activity_arn, lambda sfn, token, question: sfn.send_task_failure(
            taskToken=token, error="Worker.CannotAnswer", cause=f"no answer to {question}")
    )  # fmt: skip
    execution = stack.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps({"question": "how"})
    )["executionArn"]
    described = _finish(stack, execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "Worker.CannotAnswer",
        "no answer to how",
    )


def test_get_activity_task_without_work_answers_no_token_after_its_wait(stack, activity) -> None:
    activity_arn, _ = activity
    stack.activities.poll_seconds = 0.5
    try:
        started = time.monotonic()
        task = stack.client("stepfunctions").get_activity_task(activityArn=activity_arn)
        waited = time.monotonic() - started
    finally:
        stack.activities.poll_seconds = 60
    assert not task.get("taskToken")
    assert 0.4 < waited < 5


def test_get_activity_task_refuses_an_activity_that_does_not_exist(stack) -> None:
    sfn = stack.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.get_activity_task(activityArn="arn:aws:states:us-east-1:123456789012:activity:nothing")


def test_the_example_files_are_aws_documented_format(tmp_path: Path) -> None:
    from local_runtime.mocking import MockConfig

    config = MockConfig.load(EXAMPLE / "MockConfigFile.json")
    assert set(config.machines["LambdaSQSIntegration"]["TestCases"]) == {"HappyPath", "RetryPath", "HybridPath"}
