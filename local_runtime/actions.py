"""What a user does with the pipeline, as plain calls: the CLI and the demo share them.

Each works against the local stack and against a deployed one: they are boto3 and HTTP calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests

REVIEW_LINK = re.compile(r"(https?://\S+/approvals/[A-Za-z0-9_-]{32})")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def review_link(message: str) -> str | None:
    match = REVIEW_LINK.search(message)
    return match.group(1) if match else None


def decide(link: str, decision: str, reviewer: str, comment: str = "", timeout: float = 30) -> requests.Response:
    """Does exactly what the page's button does: load the page, then POST the form with its token."""
    session = requests.Session()
    # Not followed: with ReviewerAuth=cognito the page redirects to a sign-in only a person can do.
    page = session.get(link, timeout=timeout, allow_redirects=False)
    token = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or token is None:
        return page
    origin = re.match(r"https?://[^/]+", link)
    return session.post(
        link,
        data={"decision": decision, "csrf": token.group(1), "reviewer": reviewer, "comment": comment},
        headers={"Origin": origin.group(0) if origin else ""},
        timeout=timeout,
    )


def predict(predict_url: str, api_key: str, data: str, timeout: float = 30) -> requests.Response:
    return requests.post(predict_url, json={"data": data}, headers={"x-api-key": api_key}, timeout=timeout)


class Reviewer:
    """Answers the review email of a waiting execution once, as a person clicking its link would.

    Use it as ``follow(..., on_tick=Reviewer(stack.read_inbox))``; with ``decision=None`` it only
    reports the email (``on_email``) and leaves the decision to a person.
    """

    def __init__(
        self,
        read_inbox: Callable[[], list[dict[str, Any]]],
        decision: str | None = "approve",
        reviewer: str = "automatic reviewer",
        on_email: Callable[[dict[str, Any], str], None] = lambda message, link: None,
    ) -> None:
        self.read_inbox = read_inbox
        self.decision = decision
        self.reviewer = reviewer
        self.on_email = on_email
        self.link: str | None = None
        self.reply: requests.Response | None = None

    def __call__(self, view: Any) -> bool:
        waiting = view.states and view.states[-1].name == "Wait for approval" and view.states[-1].exited is None
        if waiting and self.link is None:
            for message in self.read_inbox():
                link = review_link(message.get("Message", ""))
                if link:
                    self.link = link
                    self.on_email(message, link)
                    if self.decision:
                        self.reply = decide(link, self.decision, reviewer=self.reviewer)
        return False
