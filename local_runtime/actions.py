"""What a user does with the pipeline, as plain calls: the CLI and the demo share them.

Each works against the local stack and against a deployed one: they are boto3 and HTTP calls.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from local_runtime.progress import follow

REVIEW_LINK = re.compile(r"(https?://\S+/approvals/[A-Za-z0-9_-]{32})")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def review_link(message: str) -> str | None:
    match = REVIEW_LINK.search(message)
    return match.group(1) if match else None


def decide(link: str, decision: str, reviewer: str, comment: str = "", timeout: float = 30) -> requests.Response:
    """Does exactly what the page's button does: load the page, then POST the form with its token."""
    session = requests.Session()
    # Not followed: with ReviewerAuth=cognito the page redirects to a sign-in only a person can do.
    page = session.get(link, timeout=timeout, allow_redirects=False)
    token = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or token is None:
        return page
    origin = re.match(r"https?://[^/]+", link)
    return session.post(
        link,
        data={"decision": decision, "csrf": token.group(1), "reviewer": reviewer, "comment": comment},
        headers={"Origin": origin.group(0) if origin else ""},
        timeout=timeout,
    )


def predict(predict_url: str, api_key: str, data: str, timeout: float = 30) -> requests.Response:
    return requests.post(predict_url, json={"data": data}, headers={"x-api-key": api_key}, timeout=timeout)


class Reviewer:
    """Answers the review email of a waiting execution once, as a person clicking its link would.

    Use it as ``follow(..., on_tick=Reviewer(stack.read_inbox))``; with ``decision=None`` it only
    reports the email (``on_email``) and leaves the decision to a person.
    """

    def __init__(
        self,
        read_inbox: Callable[[], list[dict[str, Any]]],
        decision: str | None = "approve",
        reviewer: str = "automatic reviewer",
        on_email: Callable[[dict[str, Any], str], None] = lambda message, link: None,
    ) -> None:
        self.read_inbox = read_inbox
        self.decision = decision
        self.reviewer = reviewer
        self.on_email = on_email
        self.link: str | None = None
        self.reply: requests.Response | None = None

    def __call__(self, view: Any) -> bool:
        waiting = view.states and view.states[-1].name == "Wait for approval" and view.states[-1].exited is None
        if waiting and self.link is None:
            for message in self.read_inbox():
                link = review_link(message.get("Message", ""))
                if link:
                    self.link = link
                    self.on_email(message, link)
                    if self.decision:
                        self.reply = decide(link, self.decision, reviewer=self.reviewer)
        return False


def iris_csv(every: int = 1, relabel_every: int = 0) -> str:
    """The iris data set as raw CSV with a header. ``every=2`` keeps every second row; ``relabel_every=10``
    moves every tenth row's label to the next class, noise no model can learn."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,label"]
    for index, (features, target) in enumerate(zip(iris.data, iris.target, strict=True)):
        if index % every:
            continue
        if relabel_every and index % relabel_every == 0:
            target = (target + 1) % len(iris.target_names)
        lines.append(",".join([*(f"{v:g}" for v in features), iris.target_names[target]]))
    return "\n".join(lines) + "\n"


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@dataclass(frozen=True)
class SmokeResult:
    execution_arn: str
    status: str
    outcome: str
    reason: str
    model_code: str

    @property
    def passed(self) -> bool:
        return self.status == "SUCCEEDED" and self.outcome == "not-promoted" and "threshold" in self.reason


def smoke_run(
    client: Callable[[str], Any], stack_name: str, timeout: float = 3600, poll_seconds: float = 5
) -> SmokeResult:
    """A run of a deployed stack that ends on a known outcome without a person: iris with label noise, and an
    accuracy threshold of 1 that no model can meet. It prepares data, trains and evaluates for real, and the
    gate says `not-promoted`. The data goes under `smoke/`, outside the prefix whose uploads start runs."""
    outputs = stack_outputs(client("cloudformation"), stack_name)
    run_id = uuid.uuid4().hex[:12]
    bucket, key = outputs["DataBucketName"], f"smoke/{run_id}.csv"
    client("s3").put_object(Bucket=bucket, Key=key, Body=iris_csv(relabel_every=10).encode())
    run_input = {
        "trigger": "manual",
        "rawDataUri": f"s3://{bucket}/{key}",
        "dataVersion": f"smoke/{run_id}",
        "accuracyThreshold": 1,
    }
    sfn = client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=outputs["StateMachineArn"], name=f"smoke-{run_id}", input=json.dumps(run_input)
    )["executionArn"]
    view = follow(sfn, arn, poll_seconds=poll_seconds, timeout=timeout)
    output = json.loads(sfn.describe_execution(executionArn=arn).get("output") or "{}")
    return SmokeResult(
        arn, view.status, output.get("outcome", ""), output.get("reason", "") or view.error or "",
        output.get("modelCode", ""),
    )  # fmt: skip


def training_job_request(
    stack: Any, name: str, data_uri: str, hosts: int, hyperparameters: dict[str, str]
) -> dict[str, Any]:
    """A CreateTrainingJob request as the workflow makes one (the stack's role, image, metrics and code) for
    prepared data at ``data_uri`` (``train/`` sharded across the hosts, ``validation/`` and ``schema/`` on all)."""
    definition = json.loads(
        stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
    )
    algorithm = definition["States"]["Train candidate model"]["Arguments"]["AlgorithmSpecification"]
    channels = [
        ("train", "ShardedByS3Key"),
        ("validation", "FullyReplicated"),
        ("schema", "FullyReplicated"),
    ]
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm,  # the image, the input mode and the metrics the workflow reads
        "RoleArn": stack.role_arn("TrainingRole"),
        "HyperParameters": {
            **hyperparameters,
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": stack.template.attributes["ModelCode"]["Uri"],
        },
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{data_uri}{channel}/",
                        "S3DataDistributionType": distribution,
                    }
                },
            }
            for channel, distribution in channels
        ],
        "OutputDataConfig": {"S3OutputPath": f"{data_uri.rstrip('/').removesuffix('/data')}/model/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
