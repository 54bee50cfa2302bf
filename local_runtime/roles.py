"""The IAM roles and permissions a deploy creates, exactly as the SAM transform generates them.

SAM turns a function's ``Policies`` (policy templates included), a state machine's ``Policies`` and
each event source into roles and ``AWS::Lambda::Permission`` resources. The local deploy runs the same
transform (aws-sam-translator, offline) and evaluates those roles, so a policy template that grants
less than a handler needs fails here as it would on AWS.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from samtranslator.translator.transform import transform

from local_runtime.template import REGION

_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_XRAY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
_SQS_POLLER = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
_XRAY_DAEMON = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"

# The AWS managed policies SAM attaches, as AWS publishes them. An ARN missing here grants nothing
# locally and the deploy warns about it.
_XRAY_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}
managed_policy_documents: dict[str, dict[str, Any]] = {
    _BASIC: {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    _SQS_POLLER: {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                "Resource": "*",
            }
        ],
    },
    _XRAY: _XRAY_DOCUMENT,
    _XRAY_DAEMON: _XRAY_DOCUMENT,
}


class _ManagedPolicies:
    """The translator asks IAM for managed policy ARNs by name; these are the ones SAM attaches."""

    def load(self) -> dict[str, str]:
        return {arn.rsplit("/", 1)[-1]: arn for arn in managed_policy_documents}


def transformed_resources(body: dict[str, Any], parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The CloudFormation resources the SAM transform makes of a packaged template."""
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator reads the region from the environment
    try:
        return transform(copy.deepcopy(body), dict(parameters), _ManagedPolicies())["Resources"]
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
