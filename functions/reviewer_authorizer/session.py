"""Who sent a review-page request, judged from its session cookie; independent of AWS."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

SESSION_COOKIE = "review_session"


@dataclass(frozen=True)
class Reviewer:
    email: str
    sub: str
    approver: bool


def session_token(cookie_header: str | None) -> str | None:
    """The session cookie's value, or None when the browser sent none (or a header that cannot be parsed)."""
    if not cookie_header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel and morsel.value else None


def unverified_claims(token: str) -> dict[str, Any] | None:
    """A JWT's payload, read without checking its signature: good only for refusing early, never for trusting."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def refusal(claims: dict[str, Any] | None, client_id: str, now: float) -> str | None:
    """Why a token cannot open a session, judged on its claims before Cognito checks its signature."""
    if claims is None:
        return "the session is not a token"
    if claims.get("token_use") != "access":
        return "the session is not an access token"
    if claims.get("client_id") != client_id:
        return "the token was issued to another app"
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires <= now:
        return "the token has expired"
    return None


def authorizer_context(mode: str, reviewer: Reviewer | None, reason: str | None) -> dict[str, str]:
    """What the approval API learns about the caller (API Gateway passes string values only)."""
    context = {"reviewerAuth": mode, "signedIn": "false", "approver": "false"}
    if reviewer:
        context.update(signedIn="true", email=reviewer.email, sub=reviewer.sub, approver=str(reviewer.approver).lower())
    if reason:
        context["refusal"] = reason
    return context


def allows(mode: str, method: str, reviewer: Reviewer | None) -> bool:
    """Anyone may load a review page, which asks for a sign-in; only an approver may send a decision."""
    if mode != "cognito" or method == "GET":
        return True
    return reviewer is not None and reviewer.approver
