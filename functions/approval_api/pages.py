"""HTML pages of the review flow. Every value from storage or the request is escaped."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from evidence import STYLE as EVIDENCE_STYLE
from evidence import evidence_section

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#16191f}"
    "table{border-collapse:collapse;margin:1rem 0}"
    "td,th{padding:.4rem .8rem;border-bottom:1px solid #d5dbdb;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.actions{display:flex;gap:1rem;margin-top:1rem}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border-radius:4px;border:1px solid #545b64;cursor:pointer}"
    ".approve{background:#1d8102;color:#fff;border-color:#1d8102}"
    ".reject{background:#fff;color:#d13212;border-color:#d13212}"
    "label{display:block;margin-top:.8rem}input,textarea{width:100%;box-sizing:border-box;padding:.4rem}"
    ".note{color:#545b64}" + EVIDENCE_STYLE
)

SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # "no-referrer" would make browsers send "Origin: null" on the form post, which the CSRF check refuses.
    "Referrer-Policy": "same-origin",
}


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _metrics_table(item: dict[str, Any]) -> str:
    production = item.get("productionModel") or "none yet"

    def cell(value: Any) -> str:
        return escape(str(value)) if value not in (None, "") else "n/a"

    return (
        "<table><tr><th></th><th>candidate</th><th>production</th></tr>"
        f"<tr><td>model</td><td>{cell(item.get('modelName'))}</td><td>{escape(str(production))}</td></tr>"
        "<tr><td>accuracy, both on this run's test rows</td>"
        f"<td id=candidate-accuracy>{cell(item.get('candidateAccuracy'))}</td>"
        f"<td id=production-accuracy>{cell(item.get('productionAccuracy'))}</td></tr>"
        f"<tr><td>test-set accuracy ({cell(item.get('testRows'))} rows)</td>"
        f"<td id=test-accuracy>{cell(item.get('testAccuracy'))}</td><td></td></tr></table>"
        f"<p class=note>Gate: {cell(item.get('gateReason'))}</p>"
        f"<p class=note>Test-set predictions: {cell(item.get('predictionsUri'))}</p>"
    )


def _evidence(item: dict[str, Any]) -> str:
    """The stored evidence, drawn; reviews requested before evidence was stored show the table alone."""
    try:
        stored = json.loads(item.get("evidence") or "{}")
    except ValueError:
        return ""
    return evidence_section(stored) if isinstance(stored, dict) and stored else ""


def review_page(item: dict[str, Any], signed_in_as: str | None = None) -> str:
    """The evidence and the decision form; a signed-in reviewer decides as themselves, not as a typed name."""
    who = (
        f"<p id=signed-in-as>Signed in as {escape(signed_in_as)}.</p>"
        if signed_in_as
        else '<label>Your name <input name="reviewer" maxlength="100" autocomplete="name"></label>'
    )
    body = (
        _metrics_table(item)
        + _evidence(item)
        + "<p>Approving replaces the production model on the endpoint. Rejecting changes nothing.</p>"
        + '<form method="post">'
        + f'<input type="hidden" name="csrf" value="{escape(item["csrfToken"])}">'
        + who
        + '<label>Comment <textarea name="comment" maxlength="1000" rows="3"></textarea></label>'
        + '<div class="actions"><button class="approve" name="decision" value="approve">Approve and deploy</button>'
        + '<button class="reject" name="decision" value="reject">Reject</button></div></form>'
        + f"<p class=note>This link expires at {escape(item['expiresAt'])}.</p>"
    )
    return _page(f"Review model {item['modelName']}", body)


def decided_page(item: dict[str, Any], *, just_now: bool) -> str:
    verb = "approved" if item.get("status") == "approved" else "rejected"
    who = escape(item.get("decidedBy") or "anonymous")
    when = escape(item.get("decidedAt") or "")
    comment = item.get("comment")
    lead = (
        f"<p id=outcome>You {verb} this model. "
        + ("The deployment continues.</p>" if verb == "approved" else "Nothing will be deployed.</p>")
        if just_now
        else f"<p id=outcome>Already decided: {verb} by {who} at {when}.</p>"
    )
    extra = f"<p>Comment: {escape(comment)}</p>" if comment else ""
    return _page(f"Model {item['modelName']} {verb}", lead + extra + _metrics_table(item) + _evidence(item))


def expired_page(item: dict[str, Any]) -> str:
    return _page(
        "This review link has expired",
        f"<p id=outcome>The review of model {escape(item['modelName'])} expired at {escape(item['expiresAt'])}. "
        "Nothing was deployed; the next run will ask again.</p>",
    )


def message_page(title: str, message: str) -> str:
    return _page(title, f"<p id=outcome>{escape(message)}</p>")
