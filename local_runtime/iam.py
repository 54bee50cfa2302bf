"""IAM policy evaluation, as AWS evaluates a request within one account.

    decision = evaluate(Request(principal, "s3:GetObject", "arn:aws:s3:::bucket/key", context), identity, resource)

- an explicit Deny in any policy wins;
- otherwise an Allow in an identity-based policy, or in a resource-based policy whose Principal names
  the caller, allows;
- otherwise the request is implicitly denied.

Actions match case-insensitively, resources case-sensitively, both with ``*`` and ``?`` wildcards;
``NotAction`` and ``NotResource`` invert the match. Conditions are evaluated for the operators in
``OPERATORS`` (each also with ``IfExists``) and the keys in ``EVALUATED_KEYS``. A condition on any
other key or operator cannot be decided here: an Allow that depends on it does not allow, a Deny that
depends on it denies, and the decision lists it under ``unsupported`` so it shows in the access report.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

# Condition keys the local runtime fills in for the requests it serves.
EVALUATED_KEYS = frozenset(
    {
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:requestedregion",
        "aws:sourcearn",
        "aws:sourceaccount",
        "iam:passedtoservice",
        "cloudwatch:namespace",
        "s3:prefix",
        "sagemaker:volumekmskey",
        "sagemaker:outputkmskey",
    }
)


@dataclass(frozen=True)
class Caller:
    """Who makes a request: an assumed role session or an AWS service principal."""

    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>, or the service principal
    role_arn: str = ""
    service: str = ""

    @property
    def account(self) -> str:
        parts = self.arn.split(":")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class Request:
    caller: Caller
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    unsupported: tuple[str, ...] = ()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _matches(statement: dict[str, Any], key: str, value: str, ignore_case: bool) -> bool:
    if key in statement:
        return any(_glob(p, value, ignore_case) for p in _as_list(statement[key]))
    if f"Not{key}" in statement:
        return not any(_glob(p, value, ignore_case) for p in _as_list(statement[f"Not{key}"]))
    return False


def _principal_matches(statement: dict[str, Any], caller: Caller) -> bool:
    """Whether a resource policy statement names the caller."""
    principal = statement.get("Principal")
    if principal is None:
        return False
    if principal == "*":
        return True
    for kind, values in principal.items():
        for value in _as_list(values):
            if value == "*":
                return True
            if kind == "Service" and value == caller.service:
                return True
            if kind == "AWS" and value in (caller.role_arn, caller.arn, caller.account):
                return True
            if kind == "AWS" and value == f"arn:aws:iam::{caller.account}:root":
                return True
    return False


_STRING = {
    "StringEquals": lambda a, p: a == p,
    "StringNotEquals": lambda a, p: a != p,
    "StringEqualsIgnoreCase": lambda a, p: a.lower() == p.lower(),
    "StringNotEqualsIgnoreCase": lambda a, p: a.lower() != p.lower(),
    "StringLike": lambda a, p: _glob(p, a),
    "StringNotLike": lambda a, p: not _glob(p, a),
    "ArnEquals": lambda a, p: a == p,
    "ArnLike": lambda a, p: _glob(p, a),
    "ArnNotEquals": lambda a, p: a != p,
    "ArnNotLike": lambda a, p: not _glob(p, a),
    "Bool": lambda a, p: str(a).lower() == str(p).lower(),
    "NumericEquals": lambda a, p: float(a) == float(p),
    "NumericNotEquals": lambda a, p: float(a) != float(p),
    "NumericLessThan": lambda a, p: float(a) < float(p),
    "NumericLessThanEquals": lambda a, p: float(a) <= float(p),
    "NumericGreaterThan": lambda a, p: float(a) > float(p),
    "NumericGreaterThanEquals": lambda a, p: float(a) >= float(p),
}
OPERATORS = frozenset({*_STRING, "Null"})
_NEGATED = re.compile(r"^(String|Arn|Numeric)Not")


class _Undecidable(Exception):
    pass


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in OPERATORS:
        raise _Undecidable(f"condition operator {operator}")
    lowered = key.lower()
    if lowered not in EVALUATED_KEYS:
        raise _Undecidable(f"condition key {key}")
    present = lowered in context and context[lowered] is not None
    if base == "Null":
        return any((str(p).lower() == "true") == (not present) for p in _as_list(expected))
    if not present:
        # An absent key makes positive operators false and negated ones true, unless ...IfExists.
        return if_exists or bool(_NEGATED.match(base))
    actual = context[lowered]
    values = [str(v) for v in _as_list(expected)]
    test = _STRING[base]
    if _NEGATED.match(base):
        return all(test(str(actual), v) for v in values)
    return any(test(str(actual), v) for v in values)


def _conditions_hold(statement: dict[str, Any], context: dict[str, Any]) -> bool:
    for operator, checks in statement.get("Condition", {}).items():
        for key, expected in checks.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def _statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    return _as_list(policy.get("Statement", [])) if policy else []


def evaluate(
    request: Request, identity_policies: list[dict[str, Any]], resource_policy: dict[str, Any] | None = None
) -> Decision:
    context = {k.lower(): v for k, v in request.context.items()}
    context.setdefault("aws:principalarn", request.caller.role_arn or request.caller.arn)
    context.setdefault("aws:principalaccount", request.caller.account)
    allowed_by: str | None = None
    unsupported: list[str] = []
    sources = [("identity", s) for p in identity_policies for s in _statements(p)]
    sources += [("resource", s) for s in _statements(resource_policy) if _principal_matches(s, request.caller)]
    for source, statement in sources:
        if not (
            _matches(statement, "Action", request.action, ignore_case=True)
            and _matches(statement, "Resource", request.resource, ignore_case=False)
        ):
            continue
        deny = statement.get("Effect") == "Deny"
        try:
            holds = _conditions_hold(statement, context)
        except _Undecidable as why:
            unsupported.append(str(why))
            holds = deny  # never allow on a guess; a Deny that might apply applies
        if holds and deny:
            return Decision(False, _denied(request, f"with an explicit deny in {_article(source)}"), tuple(unsupported))
        if holds:
            allowed_by = allowed_by or source
    if allowed_by:
        return Decision(True, "", tuple(unsupported))
    return Decision(
        False,
        _denied(request, f"because no identity-based policy allows the {request.action} action"),
        tuple(unsupported),
    )


def _article(source: str) -> str:
    return "an identity-based policy" if source == "identity" else "a resource-based policy"


def _denied(request: Request, why: str) -> str:
    return (
        f"User: {request.caller.arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource} {why}"
    )
