"""Cognito's hosted sign-in pages for the local user pools, which moto does not serve.

OAuth 2.0's authorization-code flow with PKCE, as a user pool domain runs it: ``/oauth2/authorize`` checks
the app client and its callback URLs and shows a sign-in form, a correct password sends the browser back
with a one-time code, and ``/oauth2/token`` trades that code, once, for the tokens moto's user pool issues.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

CODE_SECONDS = 300  # Cognito's authorization codes are valid for five minutes
SIGN_IN_FIELDS = ("client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method")


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    tokens: dict[str, Any]
    expires: float


class HostedSignIn:
    """A WSGI app for every user pool domain of the stack; ``cognito`` is an administrator's cognito-idp client."""

    def __init__(self, cognito: Callable[[], Any]) -> None:
        self.cognito = cognito
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        routes = {
            ("GET", "/oauth2/authorize"): self._authorize,
            ("GET", "/login"): self._authorize,
            ("POST", "/login"): self._login,
            ("POST", "/oauth2/token"): self._token,
        }
        handler = routes.get((request.method, request.path))
        response = handler(request) if handler else _page(404, "Not found", "<p>No such page.</p>")
        return response(environ, start_response)

    # ------------------------------------------------------------- sign-in page
    def _client(self, client_id: str) -> tuple[str, dict[str, Any]] | None:
        """(user pool id, app client) for a client id, or None when no pool has it."""
        cognito = self.cognito()
        for pool in cognito.list_user_pools(MaxResults=60)["UserPools"]:
            try:
                client = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=client_id)
            except cognito.exceptions.ResourceNotFoundException:
                continue
            return pool["Id"], client["UserPoolClient"]
        return None

    def _check(self, fields: dict[str, str]) -> tuple[str | None, str]:
        """(why Cognito would not start this sign-in, or None; the app client's user pool)."""
        found = self._client(fields.get("client_id", ""))
        if found is None:
            return "invalid_request: unknown client_id", ""
        pool_id, client = found
        if fields.get("redirect_uri") not in client.get("CallbackURLs", []):
            return "redirect_mismatch: the redirect_uri is not a callback URL of this app client", pool_id
        if "code" not in client.get("AllowedOAuthFlows", []) or not client.get("AllowedOAuthFlowsUserPoolClient"):
            return "unauthorized_client: this app client may not use the code flow", pool_id
        if fields.get("code_challenge") and fields.get("code_challenge_method") != "S256":
            return "invalid_request: code_challenge_method must be S256", pool_id
        return None, pool_id

    def _authorize(self, request: Request) -> Response:
        fields = {name: request.args.get(name, "") for name in SIGN_IN_FIELDS}
        if request.args.get("response_type") != "code" and request.path == "/oauth2/authorize":
            return _page(400, "Sign-in error", "<p id=error>unsupported_response_type</p>")
        refusal, _ = self._check(fields)
        if refusal:
            return _page(400, "Sign-in error", f"<p id=error>{escape(refusal)}</p>")
        return _sign_in_form(fields, error=None)

    def _login(self, request: Request) -> Response:
        fields = {name: request.form.get(name, "") for name in SIGN_IN_FIELDS}
        refusal, pool_id = self._check(fields)
        if refusal:
            return _page(400, "Sign-in error", f"<p id=error>{escape(refusal)}</p>")
        cognito = self.cognito()
        try:
            answer = cognito.admin_initiate_auth(
                UserPoolId=pool_id,
                ClientId=fields["client_id"],
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": request.form.get("username", ""),
                                "PASSWORD": request.form.get("password", "")},
            )  # fmt: skip
        except (cognito.exceptions.NotAuthorizedException, cognito.exceptions.UserNotFoundException):
            return _sign_in_form(fields, error="Incorrect username or password.")
        if "AuthenticationResult" not in answer:
            # The hosted page would ask for a new password here; locally, set one with
            # `aws cognito-idp admin-set-user-password --permanent`.
            return _sign_in_form(fields, error=f"This account must first answer {answer.get('ChallengeName')}.")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[code] = _Grant(
                fields["client_id"],
                fields["redirect_uri"],
                fields["code_challenge"],
                fields["code_challenge_method"],
                answer["AuthenticationResult"],
                time.time() + CODE_SECONDS,
            )
        query = {"code": code, **({"state": fields["state"]} if fields["state"] else {})}
        return Response(status=302, headers={"Location": f"{fields['redirect_uri']}?{urlencode(query)}"})

    # ------------------------------------------------------------ token endpoint
    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code is good for one exchange
        if grant is None or grant.expires < time.time():
            return _oauth_error("invalid_grant")
        if form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error("invalid_grant")
        if grant.challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not hmac.compare_digest(digest, grant.challenge):
                return _oauth_error("invalid_grant")
        tokens = {
            "id_token": grant.tokens["IdToken"],
            "access_token": grant.tokens["AccessToken"],
            "refresh_token": grant.tokens.get("RefreshToken", ""),
            "expires_in": grant.tokens.get("ExpiresIn", 3600),
            "token_type": "Bearer",
        }
        return Response(json.dumps(tokens), status=200, content_type="application/json")


def _oauth_error(code: str) -> Response:
    return Response(json.dumps({"error": code}), status=400, content_type="application/json")


def _page(status: int, title: str, body: str) -> Response:
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _sign_in_form(fields: dict[str, str], error: str | None) -> Response:
    hidden = "".join(f'<input type=hidden name="{name}" value="{escape(value)}">' for name, value in fields.items())
    message = f"<p id=error role=alert>{escape(error)}</p>" if error else ""
    return _page(
        200,
        "Sign in",
        f'{message}<form method=post action="/login">{hidden}'
        "<label>Email <input name=username type=email autocomplete=username required></label>"
        "<label>Password <input name=password type=password autocomplete=current-password required></label>"
        "<button type=submit>Sign in</button></form>",
    )
