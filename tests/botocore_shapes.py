"""Checks a response against botocore's output shape: required members, member types, no undefined members."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.parsers import create_parser

SESSION = botocore.session.get_session()
SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "blob": (str, bytes),
}


def shape_errors(shape: Shape, value: Any, where: str = "") -> list[str]:
    """Every way ``value`` (a JSON document, or a botocore-parsed response) departs from ``shape``."""
    where = where or shape.name
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        members = shape.members
        errors = [f"{where}: required member {name} is missing" for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name not in members:
                errors.append(f"{where}: {name} is not a member of {shape.name}")
            else:
                errors += shape_errors(members[name], item, f"{where}.{name}")
        return errors
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in shape_errors(shape.member, item, f"{where}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        return [e for k, v in value.items() for e in shape_errors(shape.value, v, f"{where}[{k}]")]
    if kind == "timestamp":
        # JSON protocols send epoch seconds; parsed responses hold datetimes.
        ok = isinstance(value, datetime | int | float | str) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a timestamp, got {value!r}"]
    expected = SCALARS[kind]
    if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{where}: {value!r} is not one of {shape.enum}"]
    return []


def response_errors(service: str, operation: str, status: int, headers: dict[str, str], body: bytes) -> list[str]:
    """Checks a raw HTTP response: JSON bodies as sent (so undefined members show), others as botocore parses them."""
    model = SESSION.get_service_model(service)
    output = model.operation_model(operation).output_shape
    if output is None:
        return [] if not body.strip(b"{} \n") else [f"{operation}: has no output shape but returned {body[:80]!r}"]
    protocol = model.metadata["protocol"]
    if protocol == "json":
        return shape_errors(output, json.loads(body or b"{}"))
    response = {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": body}
    parsed = create_parser(protocol).parse(response, output)
    parsed.pop("ResponseMetadata", None)
    return shape_errors(output, parsed)
