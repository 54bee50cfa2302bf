"""Signing a reviewer in through Cognito's hosted pages: OAuth 2.0 code flow with PKCE, independent of AWS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from decision import valid_approval_id

SESSION_COOKIE = "review_session"  # read by the reviewer authorizer
SIGN_IN_COOKIE = "review_sign_in"
SIGN_IN_SECONDS = 600


class BadSignIn(ValueError):
    """A sign-in that cannot be finished; the message says what to do."""


@dataclass(frozen=True)
class SignInStart:
    location: str  # Cognito's authorize URL
    cookie: str  # state, PKCE verifier and review, kept by the browser until it comes back


def start(approval_id: str, sign_in_url: str, client_id: str, redirect_uri: str) -> SignInStart:
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return SignInStart(f"{sign_in_url}/oauth2/authorize?{query}", f"{state}.{verifier}.{approval_id}")


def finish(cookie_header: str | None, state: str | None) -> tuple[str, str]:
    """The PKCE verifier and the review to return to, once the state Cognito sent back is the one we sent."""
    kept = cookie(cookie_header, SIGN_IN_COOKIE)
    parts = kept.split(".") if kept else []
    if len(parts) != 3 or not valid_approval_id(parts[2]):
        raise BadSignIn("This sign-in was not started here, or took too long. Open the review link again.")
    expected, verifier, approval_id = parts
    if not state or not hmac.compare_digest(expected, state):
        raise BadSignIn("This sign-in does not match the one this browser started. Open the review link again.")
    return verifier, approval_id


def cookie(cookie_header: str | None, name: str) -> str | None:
    if not cookie_header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None
