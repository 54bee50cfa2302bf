"""Reads template.yaml and resolves it to local names and ARNs.

Only the intrinsic functions and pseudo parameters the template uses are supported; anything else
raises ``UnsupportedTemplate`` naming it, so a template change never silently deploys wrong.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

ACCOUNT = "123456789012"
REGION = "us-east-1"
NO_VALUE = object()
# What !Ref and !GetAtt of a skipped resource give: the endpoint refuses a request naming it (see stack.py).
SKIPPED_MARKER = "local-runtime-skipped-"


class UnsupportedTemplate(Exception):
    """The template uses something the local runtime cannot reproduce."""


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    stack_name: str
    parameters: dict[str, str]
    physical_ids: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    # AWS URLs that have a local stand-in, such as an API's execute-api URL and its 127.0.0.1 server.
    local_urls: dict[str, str] = field(default_factory=dict)
    # What custom resources returned as Data, for !GetAtt.
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Resources of types the local runtime cannot deploy, by logical id: their type.
    skipped: dict[str, str] = field(default_factory=dict)
    # What the SAM transform makes of the template, for !GetAtt of the resources it adds (see name_generated).
    generated: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))

    def function_settings(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with the template's Globals applied, as SAM does."""
        merged = dict(self.resolve(self.body.get("Globals", {}).get("Function", {})))
        own = self.properties(logical_id)
        env = {
            **merged.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        merged.update(own)
        merged["Environment"] = {"Variables": env}
        return merged

    def name_generated(self, resources: dict[str, dict[str, Any]]) -> None:
        """Physical ids for resources the SAM transform adds (function and event roles, permissions)."""
        self.generated = resources
        for logical_id, resource in resources.items():
            if logical_id not in self.physical_ids:
                self.physical_ids[logical_id] = _physical_id(self, logical_id, resource)

    # ---------------------------------------------------------------- intrinsics
    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            for remote, local in self.local_urls.items():
                value = value.replace(remote, local)
            return value
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _INTRINSICS.get(key)
            if handler:
                return handler(self, argument)
            if key.startswith("Fn::"):
                raise UnsupportedTemplate(f"intrinsic function {key} is not supported locally")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]  # type: ignore[return-value]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.skipped:
            return SKIPPED_MARKER + name
        if name in self.physical_ids:
            return self.physical_ids[name]
        base, _, suffix = name.partition(".")
        if suffix in ("Version", "Alias") and self.resources.get(base, {}).get("Type") == "AWS::Serverless::Function":
            # SAM's AutoPublishAlias references; one local deploy publishes version 1.
            qualifier = "1" if suffix == "Version" else "live"
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.physical_ids[base]}:{qualifier}"
        raise UnsupportedTemplate(f"!Ref {name}: no parameter or resource with that name")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id in self.skipped:
            return SKIPPED_MARKER + logical_id
        resource_type = (self.resources.get(logical_id) or self.generated[logical_id])["Type"]
        physical = self.physical_ids[logical_id]
        if is_custom_resource(resource_type):
            try:
                return self.attributes[logical_id][attribute]
            except KeyError:
                raise UnsupportedTemplate(
                    f"!GetAtt {logical_id}.{attribute}: the custom resource returned no such Data"
                ) from None
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::SNS::Topic": physical,
            "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
            "AWS::Serverless::StateMachine": physical,
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}",
            "AWS::Cognito::UserPool": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{physical}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical.rsplit('/', 1)[-1]}",
            "AWS::StepFunctions::StateMachine": physical,
            "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{physical}",
        }
        if attribute == "Arn" and resource_type in arns:
            return arns[resource_type]
        if resource_type == "AWS::SQS::Queue" and attribute in ("QueueName", "QueueUrl"):
            return physical.rsplit("/", 1)[-1] if attribute == "QueueName" else physical
        if resource_type == "AWS::StepFunctions::Activity" and attribute == "Name":
            return physical.rsplit(":", 1)[1]
        if resource_type == "AWS::SNS::Topic" and attribute == "TopicName":
            return physical.rsplit(":", 1)[1]
        machines = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
        if resource_type in machines and attribute == "Name":
            return physical.rsplit(":", 1)[1]
        raise UnsupportedTemplate(f"!GetAtt {logical_id}.{attribute} is not supported locally")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def is_custom_resource(resource_type: str) -> bool:
    return resource_type == "AWS::CloudFormation::CustomResource" or resource_type.startswith("Custom::")


def _sub(template: Template, argument: Any) -> str:
    if isinstance(argument, str):
        return template.resolve(template.sub(argument, {}))
    text, variables = argument
    return template.resolve(template.sub(text, template.resolve(variables)))


def _if(template: Template, argument: list[Any]) -> Any:
    condition, when_true, when_false = argument
    return template.resolve(when_true if template.conditions[condition] else when_false)


def _find_in_map(template: Template, argument: list[Any]) -> Any:
    name, top, second = (template.resolve(a) for a in argument)
    try:
        return template.body["Mappings"][name][top][second]
    except KeyError:
        raise UnsupportedTemplate(f"!FindInMap [{name}, {top}, {second}] has no entry") from None


_INTRINSICS = {
    "Ref": lambda t, a: t.ref(a),
    "Fn::GetAtt": lambda t, a: t.get_att(*(a.split(".", 1) if isinstance(a, str) else a)),
    "Fn::Sub": _sub,
    "Fn::If": _if,
    "Fn::FindInMap": _find_in_map,
    "Fn::Join": lambda t, a: t.resolve(a[0]).join(str(x) for x in t.resolve(a[1])),
    "Fn::Equals": lambda t, a: t.resolve(a[0]) == t.resolve(a[1]),
    "Fn::Not": lambda t, a: not t.resolve(a[0]),
    "Condition": lambda t, a: t.conditions[a],
}


def _physical_id(template: Template, logical_id: str, resource: dict[str, Any]) -> str:
    resource_type = resource["Type"]
    declared = resource.get("Properties", {})
    stack = template.stack_name
    suffix = secrets.token_hex(4)
    if resource_type == "AWS::S3::Bucket":
        return f"{stack}-{logical_id.lower()}-{suffix}"[:63]
    if resource_type == "AWS::SNS::Topic":
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{stack}-{logical_id}-{suffix}"
    if resource_type in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
        return secrets.token_hex(5)
    if resource_type == "AWS::SQS::Queue":
        # Ref of a queue is its URL; moto takes the queue's name from any URL's last part.
        fifo = ".fifo" if template.resolve(declared.get("FifoQueue")) in (True, "true") else ""
        name = template.resolve(declared.get("QueueName", f"{stack}-{logical_id}-{suffix}{fifo}"))
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    if resource_type == "AWS::StepFunctions::Activity":
        return f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{template.resolve(declared['Name'])}"
    if resource_type == "AWS::StepFunctions::StateMachine":
        name = template.resolve(declared.get("StateMachineName", f"{logical_id}-{suffix}"))
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    if resource_type == "AWS::IAM::ManagedPolicy":
        # Ref of a managed policy is its ARN.
        name = template.resolve(declared.get("ManagedPolicyName", f"{stack}-{logical_id}-{suffix}"))
        return f"arn:aws:iam::{ACCOUNT}:policy{declared.get('Path', '/')}{name}"
    if resource_type == "AWS::Serverless::StateMachine":
        name = template.resolve(declared.get("Name")) if "Name" in declared else f"{logical_id}-{suffix}"
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    for name_property in ("Name", "AlarmName", "LogGroupName", "FunctionName", "TableName", "RoleName"):
        if name_property in declared:
            return template.resolve(declared[name_property])
    return f"{stack}-{logical_id}-{suffix}"


def load_template(path: Path, stack_name: str, overrides: dict[str, str] | None = None) -> Template:
    body = yaml_parse(path.read_text())
    declared = body.get("Parameters", {})
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise UnsupportedTemplate(f"unknown parameters: {', '.join(sorted(unknown))}")
    parameters = {}
    for name, spec in declared.items():
        if name in overrides:
            parameters[name] = str(overrides[name])
        elif "Default" in spec:
            parameters[name] = str(spec["Default"])
        else:
            raise UnsupportedTemplate(f"parameter {name} has no default; pass a value for it")
        allowed = spec.get("AllowedValues")
        if allowed and parameters[name] not in [str(a) for a in allowed]:
            raise UnsupportedTemplate(f"parameter {name}={parameters[name]!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, parameters[name]):
            raise UnsupportedTemplate(f"parameter {name}={parameters[name]!r} does not match {pattern}")
    template = Template(path=path, body=body, stack_name=stack_name, parameters=parameters)
    # Conditions may refer to each other, so they resolve in declaration order.
    for name, expression in body.get("Conditions", {}).items():
        template.conditions[name] = bool(template.resolve(expression))
    # Physical ids only depend on parameters, so every resource gets one before anything resolves.
    for logical_id, resource in body["Resources"].items():
        template.physical_ids[logical_id] = _physical_id(template, logical_id, resource)
    return template
