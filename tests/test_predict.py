"""POST /predict: request validation and the call to this stack's endpoint."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from handlers import LambdaContext, load_handler, sample_event
from payload import MAX_ROWS, BadRequest, body_text, parse_rows


def test_one_csv_row_as_in_the_curl_example() -> None:
    assert parse_rows(json.dumps({"data": "5.9,3.0,5.1,1.8"})) == [["5.9", "3.0", "5.1", "1.8"]]


def test_several_csv_rows_and_instances_are_accepted() -> None:
    assert parse_rows(json.dumps({"data": "1,2\n3,4\n"})) == [["1", "2"], ["3", "4"]]
    assert parse_rows(json.dumps({"instances": [[1, 2], ["3", 4.5]]})) == [[1, 2], ["3", 4.5]]


def test_csv_rows_are_read_as_the_csv_file_holds_them() -> None:
    quoted = '"5.1",3.5,"dark, blue",,NA'
    assert parse_rows(json.dumps({"data": quoted})) == [["5.1", "3.5", "dark, blue", "", "NA"]]
    semicolons = json.dumps({"data": "5,1;3,5;red\r\n4,9;3;blue"})
    assert parse_rows(semicolons) == [["5,1", "3,5", "red"], ["4,9", "3", "blue"]]
    assert parse_rows(json.dumps({"data": "\ufeff5.1\t3.5"})) == [["5.1", "3.5"]]


def test_objects_keyed_by_feature_name_and_missing_values_are_passed_to_the_model() -> None:
    rows = [{"sepal.length": 5.1, "colour": "red"}, {"sepal.length": None, "colour": "NA"}]
    assert parse_rows(json.dumps({"instances": rows})) == rows
    assert parse_rows(json.dumps({"instances": [[1, None]]})) == [[1, None]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "send a JSON body"),
        ("{oops", "not valid JSON"),
        ("[1, 2]", "exactly one of"),
        (json.dumps({"data": "1,2", "instances": [[1, 2]]}), "exactly one of"),
        (json.dumps({"data": 5}), "CSV text"),
        (json.dumps({"data": "  \n"}), "no rows"),
        (json.dumps({"instances": [1, 2]}), "list of rows"),
        (json.dumps({"instances": [[1, 2], {"a": 1}]}), "all lists of values, or all objects"),
        (json.dumps({"instances": [[1, True]]}), "row 1, value 2: True is not a number, text or null"),
        (json.dumps({"instances": [[1, [2]]]}), "row 1, value 2: \\[2\\] is not a number, text or null"),
        (json.dumps({"instances": [{"a": {"b": 1}}]}), "row 1, 'a': {'b': 1} is not a number, text or null"),
        (json.dumps({"instances": [{}]}), "row 1 is empty"),
        (json.dumps({"data": "1,inf"}), "row 1, value 2: 'inf' is not a finite number"),
        (json.dumps({"data": "1,2\n3"}), "same number of values"),
        (json.dumps({"instances": [[1]] * (MAX_ROWS + 1)}), f"at most {MAX_ROWS} rows"),
        (json.dumps({"data": "1," * 40_000}), "larger than 64 KB"),
        ("[" * 30_000 + "]" * 30_000, "nested too deeply or a number too long"),
        ('{"instances": [[' + "9" * 5000 + "]]}", "nested too deeply or a number too long"),
        ('{"instances": [[' + "9" * 400 + "]]}", "not a finite number"),
        (json.dumps({"data": "1e39,1,2,3"}), "beyond the largest value the model takes"),
        (json.dumps({"data": "1," + "x" * 5000}), "value 2: '" + "x" * 36 + "... is longer than 200 characters"),
    ],
)
def test_bad_payloads_are_rejected_with_a_message_that_says_what_to_fix(body, message) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        parse_rows(body)


@pytest.fixture
def predict(aws, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "mlops-endpoint")
    handler = load_handler("predict").lambda_handler

    def call(body: str | None) -> dict:
        return handler({**sample_event("predict"), "body": body}, LambdaContext("predict"))

    return call


def test_a_body_that_is_not_utf8_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="not UTF-8"):
        body_text(base64.b64encode(b'{"data": "\xff"}').decode(), base64_encoded=True)
    assert body_text(base64.b64encode(b'{"data": "1"}').decode(), base64_encoded=True) == '{"data": "1"}'


def test_an_unreachable_endpoint_is_a_json_503(aws, monkeypatch) -> None:
    # Nothing listens on the discard port: the SDK fails to connect, as when the endpoint's host is down.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ENDPOINT_NAME", "mlops-endpoint")
    handler = load_handler("predict").lambda_handler
    reply = handler(sample_event("predict"), LambdaContext("predict"))
    assert reply["statusCode"] == 503 and "could not be reached" in json.loads(reply["body"])["message"]


def test_bad_requests_get_a_400_and_never_reach_the_endpoint(predict) -> None:
    reply = predict(json.dumps({"data": "5.9,1e39"}))
    assert reply["statusCode"] == 400
    assert "beyond the largest value the model takes" in json.loads(reply["body"])["message"]


def test_a_valid_request_returns_the_endpoint_predictions(predict) -> None:
    # moto answers InvokeEndpoint from a queue of canned results, set through its public moto-api.
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [{"Body": json.dumps({"predictions": ["virginica"]}), "ContentType": "application/json"}],
        },
        timeout=5,
    )
    reply = predict(sample_event("predict")["body"])
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == {"predictions": ["virginica"]}
