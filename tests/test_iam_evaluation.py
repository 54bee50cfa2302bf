"""IAM policy evaluation as plain functions: the rules the local runtime applies to every principal."""

from __future__ import annotations

import pytest

from local_runtime.access import AccessControl, AccessDenied
from local_runtime.iam import Caller, Request, evaluate

ROLE = "arn:aws:iam::123456789012:role/pipeline"
CALLER = Caller("arn:aws:sts::123456789012:assumed-role/pipeline/session", role_arn=ROLE)
OBJECT = "arn:aws:s3:::data/raw/iris.csv"


def _allow(action="s3:GetObject", resource="arn:aws:s3:::data/*", **extra):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


def _request(action="s3:GetObject", resource=OBJECT, **context) -> Request:
    return Request(CALLER, action, resource, context)


def test_a_matching_allow_with_wildcards_allows() -> None:
    assert evaluate(_request(), [_allow()]).allowed
    assert evaluate(_request("S3:getobject"), [_allow("s3:Get*")]).allowed  # actions ignore case


def test_no_matching_statement_is_an_implicit_deny_with_awss_message() -> None:
    decision = evaluate(_request("s3:PutObject"), [_allow()])
    assert not decision.allowed
    assert decision.message == (
        "User: arn:aws:sts::123456789012:assumed-role/pipeline/session is not authorized to perform: "
        f"s3:PutObject on resource: {OBJECT} because no identity-based policy allows the s3:PutObject action"
    )


def test_resources_match_case_sensitively() -> None:
    assert not evaluate(_request(resource="arn:aws:s3:::DATA/raw/iris.csv"), [_allow()]).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    decision = evaluate(_request(), [_allow(), deny])
    assert not decision.allowed and "with an explicit deny in an identity-based policy" in decision.message


def test_not_action_and_not_resource_invert_the_match() -> None:
    everything_but_delete = {"Statement": [{"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}]}
    assert evaluate(_request(), [everything_but_delete]).allowed
    assert not evaluate(_request("s3:DeleteObject"), [everything_but_delete]).allowed
    outside_secrets = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secrets/*"}]}
    assert evaluate(_request(), [outside_secrets]).allowed
    assert not evaluate(_request(resource="arn:aws:s3:::secrets/key"), [outside_secrets]).allowed


def test_pass_role_is_allowed_only_to_the_named_service() -> None:
    policy = _allow(
        "iam:PassRole", ROLE, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    )
    to_sagemaker = Request(CALLER, "iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    to_lambda = Request(CALLER, "iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert evaluate(to_sagemaker, [policy]).allowed
    assert not evaluate(to_lambda, [policy]).allowed
    assert not evaluate(Request(CALLER, "iam:PassRole", ROLE), [policy]).allowed  # key absent


def test_if_exists_and_negated_operators_treat_an_absent_key_as_aws_does() -> None:
    if_exists = _allow(Condition={"StringEqualsIfExists": {"s3:prefix": "raw/"}})
    negated = _allow(Condition={"StringNotEquals": {"s3:prefix": "private/"}})
    assert evaluate(_request(), [if_exists]).allowed
    assert evaluate(_request(), [negated]).allowed


def test_a_tls_only_bucket_policy_denies_plain_http_and_allows_https() -> None:
    bucket_policy = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    assert evaluate(_request(**{"aws:SecureTransport": "true"}), [_allow()], bucket_policy).allowed
    decision = evaluate(_request(**{"aws:SecureTransport": "false"}), [_allow()], bucket_policy)
    assert not decision.allowed and "explicit deny in a resource-based policy" in decision.message


def test_a_resource_policy_that_names_the_caller_allows_without_an_identity_policy() -> None:
    service = Caller("apigateway.amazonaws.com", service="apigateway.amazonaws.com")
    function = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": function,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc/*/POST/predict"}
                },
            }
        ]
    }
    from_route = {"aws:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc/v1/POST/predict"}
    from_elsewhere = {"aws:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:other/v1/POST/predict"}
    assert evaluate(Request(service, "lambda:InvokeFunction", function, from_route), [], policy).allowed
    assert not evaluate(Request(service, "lambda:InvokeFunction", function, from_elsewhere), [], policy).allowed
    assert not evaluate(Request(CALLER, "lambda:InvokeFunction", function, from_route), [], policy).allowed


def test_a_condition_the_runtime_cannot_evaluate_never_allows_and_is_reported() -> None:
    policy = _allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "ml"}})
    decision = evaluate(_request(), [policy])
    assert not decision.allowed
    assert decision.unsupported == ("condition key aws:PrincipalTag/team",)


def test_a_deny_whose_condition_cannot_be_evaluated_still_denies() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                           "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "x"}}}]}  # fmt: skip
    decision = evaluate(_request(), [_allow(), deny])
    assert not decision.allowed and decision.unsupported


def test_a_service_takes_a_role_only_for_the_resource_its_trust_names() -> None:
    role = "arn:aws:iam::123456789012:role/new-data-rule"
    rule = "arn:aws:events:us-east-1:123456789012:rule/mlops-new-raw-data"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": "123456789012"},
                    "ArnLike": {"aws:SourceArn": rule},
                },
            }
        ],
    }
    access = AccessControl()
    access.add_role(role, [], trust)
    assert access.assume(role, "events.amazonaws.com", "events", rule).role_arn == role
    for service, source in (
        ("events.amazonaws.com", "arn:aws:events:us-east-1:123456789012:rule/someone-elses-rule"),
        ("scheduler.amazonaws.com", rule),
    ):
        with pytest.raises(AccessDenied, match="sts:AssumeRole"):
            access.assume(role, service, "events", source)
