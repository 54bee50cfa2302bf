"""ReviewerAuth=cognito: only a signed-in member of the approvers group decides, and the registry says who.

The stack runs locally with its user pool in moto, Cognito's hosted sign-in pages served by the local
runtime, and the reviewer authorizer enforced by the local API in front of the approval function.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import boto3
import pipeline
import pytest
import requests
from asl import ROOT
from handlers import LambdaContext, load_handler, sample_event
from joserfc import jwk, jwt
from moto.utilities.utils import load_resource
from session import Reviewer, allows, refusal, session_token
from sign_in import BadSignIn, finish, start

from local_runtime import actions
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

PASSWORD = "Correct-Horse-Battery-9"
APPROVER, OUTSIDER = "ana@example.com", "bob@example.com"
# The key moto's user pools sign their tokens with: a token signed with it is one Cognito could have issued.
POOL_KEY = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
SIGN_IN_FIELDS = ("client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method")


# ------------------------------------------------------------ the decisions, as plain functions
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (None, "the session is not a token"),
        ({"token_use": "id", "aud": "review-page", "exp": 2e9}, "the session is not an access token"),
        ({"token_use": "access", "client_id": "another-app", "exp": 2e9}, "the token was issued to another app"),
        ({"token_use": "access", "client_id": "review-page", "exp": 1_000}, "the token has expired"),
        ({"token_use": "access", "client_id": "review-page"}, "the token has expired"),
    ],
)
def test_a_session_whose_claims_cannot_be_right_is_refused_before_cognito_is_asked(claims, reason) -> None:
    assert refusal(claims, "review-page", now=1_795_000_000) == reason
    assert refusal({"token_use": "access", "client_id": "review-page", "exp": 2e9}, "review-page", 1.7e9) is None


def test_only_a_signed_in_approver_may_send_a_decision_but_anyone_may_load_the_page() -> None:
    approver, outsider = Reviewer("a@example.com", "sub-a", True), Reviewer("b@example.com", "sub-b", False)
    assert allows("cognito", "POST", approver)
    assert not allows("cognito", "POST", outsider) and not allows("cognito", "POST", None)
    assert allows("cognito", "GET", None)  # the page itself asks for a sign-in
    assert allows("link", "POST", None)  # ReviewerAuth=link: the link is the credential


def test_the_session_cookie_is_found_among_others_and_a_broken_header_is_no_session() -> None:
    assert session_token("theme=dark; review_session=abc.def.ghi") == "abc.def.ghi"
    assert session_token("theme=dark") is None and session_token(None) is None
    assert session_token('review_session="unterminated') is None


def test_a_sign_in_finishes_only_in_the_browser_that_started_it() -> None:
    begun = start("A" * 32, "https://mlops-review.auth.us-east-1.amazoncognito.com", "client", "https://api/cb")
    query = {k: v[0] for k, v in parse_qs(urlparse(begun.location).query).items()}
    state, verifier, _ = begun.cookie.split(".")
    assert query["state"] == state and query["code_challenge_method"] == "S256"
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == expected and verifier not in begun.location
    assert finish(f"review_sign_in={begun.cookie}", state) == (verifier, "A" * 32)
    for cookie_header, returned_state in ((f"review_sign_in={begun.cookie}", "another"), (None, state),
                                          (f"review_sign_in={state}.{verifier}.not-an-id", state)):  # fmt: skip
        with pytest.raises(BadSignIn):
            finish(cookie_header, returned_state)


# Before the stack exists: moto's in-process mock would also catch the local stack's background calls.
@pytest.mark.parametrize(("mode", "effect"), [("link", "Allow"), ("cognito", "Deny")])
def test_the_sample_authorizer_event_is_allowed_by_link_and_denied_without_a_valid_session_by_cognito(
    monkeypatch, aws, mode, effect
) -> None:
    monkeypatch.setenv("REVIEWER_AUTH", mode)
    monkeypatch.setenv("USER_POOL_ID", "us-east-1_none")
    monkeypatch.setenv("APPROVERS_GROUP", "approvers")
    # Not the stack's parameter name: Powertools caches parameters per process, and the local stack's
    # authorizer runs in this process too.
    monkeypatch.setenv("CLIENT_ID_PARAMETER", "/sample-event/review-page-client-id")
    boto3.client("ssm").put_parameter(Name="/sample-event/review-page-client-id", Type="String", Value="review-page")
    event = sample_event("reviewer_authorizer")
    answer = load_handler("reviewer_authorizer").lambda_handler(event, LambdaContext("authorizer"))
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == effect and answer["context"]["reviewerAuth"] == mode
    if mode == "cognito":
        assert answer["context"]["refusal"] == "the session is not a token"
    else:
        assert statement["Resource"] == [event["methodArn"].rsplit("/POST/", 1)[0] + "/POST/*"]


# ------------------------------------------------------------ the stack, signed in for real
@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(
        ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1", "ReviewerAuth": "cognito"}
    ) as local:
        cognito, pool = local.client("cognito-idp"), local.template.physical_ids["ReviewerPool"]
        for email in (APPROVER, OUTSIDER):
            attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
            cognito.admin_create_user(UserPoolId=pool, Username=email, UserAttributes=attributes,
                                      MessageAction="SUPPRESS")  # fmt: skip
            cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=APPROVER, GroupName="approvers")
        yield local


def _waiting_review(stack: LocalDeployment) -> tuple[str, str]:
    """A run paused at "Wait for approval" (training mocked), and its review link."""
    arn = pipeline.start_test_case(stack, "ReviewInBrowser", {})
    message = pipeline.review_email(stack)["Message"]
    assert "Sign in as a member of the approvers group to decide." in message
    return arn, actions.review_link(message)


def _sign_in(link: str, email: str, password: str = PASSWORD) -> tuple[str, requests.Response]:
    """The browser's way through: review link, Cognito's page, the callback; (session cookie, last reply)."""
    to_cognito = requests.get(link, allow_redirects=False, timeout=30)
    assert to_cognito.status_code == 302
    sign_in_cookie = to_cognito.headers["Set-Cookie"].split(";")[0]
    query = {k: v[0] for k, v in parse_qs(urlparse(to_cognito.headers["Location"]).query).items()}
    hosted = to_cognito.headers["Location"].split("/oauth2/")[0]
    form = {name: query.get(name, "") for name in SIGN_IN_FIELDS} | {"username": email, "password": password}
    signed_in = requests.post(f"{hosted}/login", data=form, allow_redirects=False, timeout=30)
    if signed_in.status_code != 302:
        return "", signed_in
    back = requests.get(signed_in.headers["Location"], headers={"Cookie": sign_in_cookie}, allow_redirects=False,
                        timeout=30)  # fmt: skip
    session = next(c for c in back.raw.headers.getlist("Set-Cookie") if c.startswith("review_session="))
    return session.split(";")[0], back


def _decide(link: str, session: str | None, csrf: str, decision: str = "approve") -> requests.Response:
    headers = {"Cookie": session} if session else {}
    form = {"csrf": csrf, "decision": decision, "reviewer": "a typed name"}
    return requests.post(link, data=form, headers=headers, allow_redirects=False, timeout=30)


def _review_record(stack: LocalDeployment, link: str) -> dict[str, str]:
    table = stack.template.physical_ids["ApprovalsTable"]
    item = stack.client("dynamodb").get_item(TableName=table, Key={"approvalId": {"S": link.rsplit("/", 1)[1]}})
    return {k: next(iter(v.values())) for k, v in item["Item"].items()}


def _resigned(session: str, key: jwk.RSAKey = POOL_KEY, **changes: object) -> str:
    """The session's token with changed claims, signed with ``key``."""
    claims = jwt.decode(session.split("=", 1)[1], POOL_KEY).claims | changes
    return "review_session=" + jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


def _tampered(session: str, **changes: object) -> str:
    """The session's token with changed claims and its original signature."""
    header, payload, signature = session.split("=", 1)[1].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) | changes
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"review_session={header}.{forged}.{signature}"


def test_an_approver_signs_in_decides_as_herself_and_the_registry_records_her_email_and_sub(stack) -> None:
    arn, link = _waiting_review(stack)
    to_cognito = requests.get(link, allow_redirects=False, timeout=30)
    assert to_cognito.status_code == 302 and ".auth." not in to_cognito.headers["Location"]  # the local stand-in
    assert "Signed in as" not in to_cognito.text

    session, back = _sign_in(link, APPROVER)
    assert back.status_code == 303 and back.headers["Location"] == urlparse(link).path
    assert "HttpOnly" in back.headers["Set-Cookie"] and "SameSite=Lax" in back.headers["Set-Cookie"]
    page = requests.get(link, headers={"Cookie": session}, timeout=30)
    assert page.status_code == 200 and f"Signed in as {APPROVER}." in page.text
    assert 'name="reviewer"' not in page.text  # nobody types a name any more

    decided = _decide(link, session, _review_record(stack, link)["csrfToken"])
    assert decided.status_code == 200 and "You approved this model" in decided.text
    assert pipeline.finish(stack, arn).status == "SUCCEEDED"
    sub = next(
        a["Value"]
        for a in stack.client("cognito-idp").admin_get_user(
            UserPoolId=stack.template.physical_ids["ReviewerPool"], Username=APPROVER
        )["UserAttributes"]
        if a["Name"] == "sub"
    )
    model = pipeline.registry(stack)[("MODEL", "mlops-mocked-run")]
    assert (model["approvedBy"], model["approvedBySub"]) == (APPROVER, sub)
    assert requests.get(link, headers={"Cookie": session}, timeout=30).text.count(f"approved by {APPROVER}") == 1


def test_decisions_without_an_approvers_valid_session_are_refused_and_the_review_stays_open(stack) -> None:
    arn, link = _waiting_review(stack)
    csrf = _review_record(stack, link)["csrfToken"]
    approver, _ = _sign_in(link, APPROVER)
    outsider, _ = _sign_in(link, OUTSIDER)
    sessions = {
        "no session": None,
        "expired": _resigned(approver, exp=int(time.time()) - 60),
        "signed with another key": _resigned(approver, jwk.RSAKey.generate_key(2048)),
        "claims changed after signing": _tampered(approver, sub="00000000-0000-0000-0000-000000000000"),
        "signed in outside the approvers group": outsider,
    }
    for why, session in sessions.items():
        refused = _decide(link, session, csrf)
        assert refused.status_code == 403, why
        assert refused.json() == {"Message": "User is not authorized to access this resource with an explicit deny"}
        page = requests.get(link, headers={"Cookie": session} if session else {}, allow_redirects=False, timeout=30)
        if session == outsider:
            assert page.status_code == 403 and "not in the approvers group" in page.text
            assert "csrf" not in page.text  # an outsider sees neither the evidence nor the form
        else:
            assert page.status_code == 302, why  # back to the sign-in page

    from local_runtime import cli

    assert cli.main(["approve", link, "--reviewer", "someone at a terminal"]) == 1  # a person must sign in
    wrong_password, page = _sign_in(link, APPROVER, password="Wrong-Password-1")
    assert not wrong_password and "Incorrect username or password." in page.text

    assert _review_record(stack, link)["status"] == "pending"
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    # The approver still can: nothing above used up the review.
    assert _decide(link, approver, csrf, "reject").status_code == 200
    assert pipeline.finish(stack, arn).status == "SUCCEEDED"
    assert pipeline.output(stack, arn)["outcome"] == "rejected"


def test_a_code_sent_back_to_a_browser_that_did_not_start_the_sign_in_is_refused(stack) -> None:
    arn, link = _waiting_review(stack)
    to_cognito = requests.get(link, allow_redirects=False, timeout=30)
    query = {k: v[0] for k, v in parse_qs(urlparse(to_cognito.headers["Location"]).query).items()}
    form = {name: query.get(name, "") for name in SIGN_IN_FIELDS} | {"username": APPROVER, "password": PASSWORD}
    hosted = to_cognito.headers["Location"].split("/oauth2/")[0]
    callback = requests.post(f"{hosted}/login", data=form, allow_redirects=False, timeout=30).headers["Location"]
    # An attacker's own code, planted in a victim's browser, which holds no sign-in cookie of its own.
    planted = requests.get(callback, allow_redirects=False, timeout=30)
    assert planted.status_code == 400 and "review_session" not in planted.headers.get("Set-Cookie", "")
    # Cognito's redirect must name a callback URL of the app client.
    foreign = to_cognito.headers["Location"].replace(
        re.search(r"redirect_uri=[^&]+", to_cognito.headers["Location"]).group(0), "redirect_uri=https%3A%2F%2Fevil"
    )
    assert requests.get(foreign, timeout=30).status_code == 400
    stack.client("stepfunctions").stop_execution(executionArn=arn)


def test_an_approver_signs_in_through_cognitos_page_in_the_browser(browser, stack, screenshots) -> None:
    arn, link = _waiting_review(stack)
    page = browser.new_page()
    page.goto(link)
    assert page.title() == "Sign in"
    page.screenshot(path=str(screenshots / "cognito-sign-in.png"), full_page=True)
    page.fill("input[name=username]", APPROVER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("#signed-in-as").inner_text() == f"Signed in as {APPROVER}."
    page.screenshot(path=str(screenshots / "cognito-signed-in-review.png"), full_page=True)
    page.click("button.reject")
    assert "You rejected this model" in page.locator("#outcome").inner_text()
    page.close()
    assert pipeline.finish(stack, arn).status == "SUCCEEDED"
    assert pipeline.output(stack, arn)["outcome"] == "rejected"
