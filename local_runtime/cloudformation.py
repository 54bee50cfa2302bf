"""CloudFormation's DescribeStacks for the local deployment, so `aws cloudformation describe-stacks`
(and every README command that reads a stack output) works unchanged against the local endpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


@dataclass
class StackDescription:
    stack_id: str
    name: str
    description: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, description
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "CREATE_COMPLETE"


def _members(rows: list[str]) -> str:
    return "".join(f"<member>{row}</member>" for row in rows)


def describe_stacks(stack: StackDescription, requested: str | None) -> tuple[int, bytes]:
    """DescribeStacks' status and XML body; a name or id other than this stack's does not exist."""
    if requested and requested not in (stack.name, stack.stack_id):
        return 400, _error("ValidationError", f"Stack with id {requested} does not exist")
    parameters = [
        f"<ParameterKey>{escape(k)}</ParameterKey><ParameterValue>{escape(v)}</ParameterValue>"
        for k, v in stack.parameters.items()
    ]
    outputs = [
        f"<OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}</OutputValue>"
        + (f"<Description>{escape(d)}</Description>" if d else "")
        for k, v, d in stack.outputs
    ]
    member = (
        f"<StackId>{escape(stack.stack_id)}</StackId><StackName>{escape(stack.name)}</StackName>"
        + (f"<Description>{escape(stack.description)}</Description>" if stack.description else "")
        + f"<Parameters>{_members(parameters)}</Parameters>"
        f"<CreationTime>{stack.created.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}</CreationTime>"
        f"<StackStatus>{stack.status}</StackStatus><DisableRollback>false</DisableRollback>"
        f"<Capabilities>{_members(['CAPABILITY_IAM', 'CAPABILITY_AUTO_EXPAND'])}</Capabilities>"
        f"<Outputs>{_members(outputs)}</Outputs><Tags/>"
        "<EnableTerminationProtection>false</EnableTerminationProtection>"
        "<DriftInformation><StackDriftStatus>NOT_CHECKED</StackDriftStatus></DriftInformation>"
    )
    body = (
        f'<DescribeStacksResponse xmlns="{NAMESPACE}"><DescribeStacksResult><Stacks><member>{member}</member>'
        f"</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        "</ResponseMetadata></DescribeStacksResponse>"
    )
    return 200, body.encode()


def _error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
