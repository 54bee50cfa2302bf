"""Every HTTP route of the template, fuzzed through the local API: whatever a client sends, the answer is
a 4xx or a success, never a 5xx, and always comes back."""

from __future__ import annotations

import json
from urllib.parse import quote

import pipeline
import pytest
import requests
from asl import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime import actions
from local_runtime.progress import follow
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

EXAMPLES = settings(
    max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True
)
TIMEOUT = 10  # seconds; a request that takes longer counts as a hang and fails the test

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.text(max_size=10), inner, max_size=5), max_leaves=15)  # fmt: skip
numbers = st.one_of(
    st.integers(), st.floats(), st.sampled_from(["1e39", "-1e39", "3.5e38", "nan", "inf", "1" * 400, "0x10", ""])
)
rows = st.lists(st.lists(numbers, max_size=6), max_size=4)
hostile = st.one_of(
    st.integers(1, 20_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 20_000).map(lambda depth: b'{"data":' * depth + b"0" + b"}" * depth),
    st.integers(300, 6000).map(lambda digits: b'{"instances": [[' + b"9" * digits + b", 1, 2, 3]]}"),
    st.sampled_from([b"\xff\xfe\x00", b'{"data": "\xc3\x28"}', b'{"data": "1e39,1,2,3"}', b"\x00" * 100]),
)


def predict_bodies() -> st.SearchStrategy[bytes]:
    payloads = st.one_of(
        st.builds(lambda data: {"data": data}, st.text(max_size=60)),
        st.builds(lambda r: {"data": "\n".join(",".join(str(v) for v in row) for row in r)}, rows),
        st.builds(lambda r: {"instances": r}, rows),
        json_values,
    )
    return st.one_of(st.binary(max_size=300), payloads.map(lambda p: json.dumps(p).encode()), hostile)


def decision_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    fields = st.dictionaries(st.sampled_from(["decision", "reviewer", "comment", "csrf", "x"]), json_values)
    as_json = fields.map(lambda f: (json.dumps(f).encode(), "application/json"))
    as_form = st.dictionaries(st.sampled_from(["decision", "reviewer", "comment", "csrf"]), st.text(max_size=30)).map(
        lambda f: ("&".join(f"{k}={quote(v)}" for k, v in f.items()).encode(), "application/x-www-form-urlencoded")
    )
    raw = st.tuples(st.binary(max_size=300) | hostile, st.sampled_from(["application/json", "text/plain", ""]))
    return st.one_of(as_json, as_form, raw)


approval_ids = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1, max_size=40),
    st.sampled_from(["A" * 32 + "\n", "A" * 32 + "%0A", "A" * 31, "A" * 33, "%00" * 32]),
)


@pytest.fixture(scope="module")
def stack():
    """A stack with a live endpoint and a decided review, so every route reaches its real work."""
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as local:
        known = local.executions()
        pipeline.upload(local, "raw/iris.csv", pipeline.iris())
        reviewer = actions.Reviewer(local.read_inbox, reviewer="fuzzing fixture")
        view = follow(local.client("stepfunctions"), local.next_execution(known), on_tick=reviewer, poll_seconds=0.2)
        assert view.status == "SUCCEEDED" and reviewer.link
        local.decided_link = reviewer.link
        yield local


def _no_server_error(reply: requests.Response) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])


def test_predict_answers_every_body_without_a_server_error(stack) -> None:
    url, key = stack.outputs["PredictUrl"], stack.api_key
    assert actions.predict(url, key, "5.9,3.0,5.1,1.8").status_code == 200

    @EXAMPLES
    @given(body=predict_bodies())
    def check(body: bytes) -> None:
        reply = requests.post(url, data=body, headers={"x-api-key": key, "content-type": "application/json"},
                              timeout=TIMEOUT)  # fmt: skip
        _no_server_error(reply)

    check()


def test_values_beyond_float32_are_refused_before_they_reach_the_model(stack) -> None:
    reply = actions.predict(stack.outputs["PredictUrl"], stack.api_key, "1e39,1,2,3")
    assert reply.status_code == 400 and "3.4e38" in reply.json()["message"]


def test_decisions_answer_every_body_without_a_server_error(stack) -> None:
    link = stack.decided_link

    @EXAMPLES
    @given(request=decision_bodies())
    def check(request: tuple[bytes, str]) -> None:
        body, content_type = request
        _no_server_error(requests.post(link, data=body, headers={"content-type": content_type}, timeout=TIMEOUT))

    check()


def test_review_pages_answer_every_approval_id_without_a_server_error(stack) -> None:
    base = stack.outputs["ApiUrl"].rstrip("/") + "/approvals/"

    @EXAMPLES
    @given(approval_id=approval_ids, post=st.booleans())
    def check(approval_id: str, post: bool) -> None:
        url = base + quote(approval_id, safe="%")
        reply = requests.post(url, data=b"decision=approve", timeout=TIMEOUT) if post else requests.get(
            url, timeout=TIMEOUT)  # fmt: skip
        _no_server_error(reply)

    check()


def test_an_approval_id_with_a_trailing_newline_is_not_found(stack) -> None:
    reply = requests.get(stack.decided_link + "%0A", timeout=TIMEOUT)
    assert reply.status_code == 404
