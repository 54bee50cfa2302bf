"""Parsing and checking a reviewer's decision request, independent of AWS."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

# Approval ids are 24 random bytes, base64url: exactly 32 characters (checked with fullmatch: "$" alone
# would let a trailing newline through).
APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{32}")
DECISIONS = {"approve": "approved", "reject": "rejected"}
MAX_BODY = 4096


class BadDecision(ValueError):
    """A request that cannot be a decision; the message says what to fix."""


@dataclass(frozen=True)
class DecisionRequest:
    status: str
    csrf: str
    reviewer: str
    comment: str
    reviewer_sub: str = ""  # Cognito's id of a signed-in reviewer; empty when anyone with the link decides


def valid_approval_id(approval_id: str | None) -> bool:
    return bool(approval_id) and APPROVAL_ID.fullmatch(approval_id) is not None


def body_text(body: str | None, base64_encoded: bool) -> str:
    """The request body as text, as API Gateway passes it; a body that is not UTF-8 is a bad request."""
    if not body or not base64_encoded:
        return body or ""
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadDecision("the body is not UTF-8 text") from None


def parse_decision(body: str | None, content_type: str) -> DecisionRequest:
    if not body:
        raise BadDecision("the request has no body; send decision=approve or decision=reject")
    if len(body) > MAX_BODY:
        raise BadDecision("the request body is too large")
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError):
            raise BadDecision("the body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise BadDecision("the JSON body must be an object")
    else:
        fields = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
    decision = fields.get("decision")
    if not isinstance(decision, str) or decision not in DECISIONS:
        raise BadDecision("decision must be 'approve' or 'reject'")
    reviewer, comment, csrf = (fields.get(name, "") for name in ("reviewer", "comment", "csrf"))
    if not all(isinstance(value, str) for value in (reviewer, comment, csrf)):
        raise BadDecision("reviewer, comment and csrf must be strings")
    return DecisionRequest(
        status=DECISIONS[decision],
        csrf=csrf,
        reviewer=reviewer.strip()[:100] or "anonymous",
        comment=comment.strip()[:1000],
    )


def same_origin(origin: str | None, host: str | None) -> bool:
    """A cross-site form post carries a foreign Origin; browsers always send Origin on POST."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlparse(origin).netloc.lower() == host.lower()


def csrf_matches(expected: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(expected, given)
