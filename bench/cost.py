"""What a run and an idle month cost on AWS, on paper: ASL transitions per outcome, times, a price table.

    .venv/bin/python bench/cost.py [--prices bench/prices-us-east-1.json] [--glue-seconds 90] ...

The paths are walked on statemachine/mlops.asl.json itself, so a change to the workflow changes the
count. Durations default to what these jobs typically bill on AWS (container start-up included);
pass measured numbers to replace them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from report import say
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
HOURS_PER_MONTH = 730

# Which way each decision goes on each outcome; unnamed Choices take their Default, Tasks their Next.
FIRST_DEPLOY = {
    "Is the candidate good enough?": "Create scoring model",
    "Does the approval name its record?": "Confirm the recorded approval",
    "Look up live endpoint": "Create endpoint",
    "Is the endpoint live?": "Register production model",
    "Was another model in production?": "Point registry at new model",
}
OUTCOMES: dict[str, dict[str, str]] = {
    "deployed (first model)": FIRST_DEPLOY,
    "deployed (update)": {
        **FIRST_DEPLOY,
        "Look up live endpoint": "Choose update strategy",
        "Was another model in production?": "Retire previous model",
    },
    "not-promoted": {"Is the candidate good enough?": "Not promoted"},
    "rejected": {"Is the candidate good enough?": "Create scoring model", "Wait for approval": "Model rejected"},
    "expired": {"Is the candidate good enough?": "Create scoring model", "Wait for approval": "Review expired"},
    "failed (training)": {"Train candidate model": "Give back data claim after failure"},
}


def walk(definition: dict[str, Any], decisions: dict[str, str], status_checks: int) -> list[str]:
    """The states one execution enters; the endpoint-status loop runs ``status_checks`` times."""
    states = definition["States"]
    path, name, checks = [], definition["StartAt"], 0
    while True:
        path.append(name)
        state = states[name]
        if name == "Is the endpoint live?":
            checks += 1
            name = "Wait for endpoint" if checks < status_checks else decisions[name]
            continue
        if name in decisions:
            name = decisions[name]
        elif state["Type"] == "Choice":
            name = state["Default"]
        elif state.get("End") or state["Type"] in ("Succeed", "Fail"):
            return path
        else:
            name = state["Next"]


def defaults() -> dict[str, str]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}


def run_cost(
    path: list[str], prices: dict[str, Any], params: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    entered = set(path)
    lambda_gb = 0.25
    lambdas = [s for s in ("Check run input", "Apply the accuracy gate", "Wait for approval") if s in entered]
    approval_requests = 2 if "Wait for approval" in entered and "Review expired" not in entered else 0
    invocations = len(lambdas) + approval_requests
    costs = {
        "Step Functions": len(path) * prices["stepfunctions_standard_per_transition"],
        "Lambda": invocations
        * (prices["lambda_per_request"] + lambda_gb * args.lambda_seconds * prices["lambda_arm64_per_gb_second"]),
        "API Gateway": approval_requests * prices["apigateway_rest_per_request"],
        "DynamoDB": sum(1 for s in path if s in DYNAMODB_STATES) * prices["dynamodb_per_write_request_unit"]
        + 2 * prices["dynamodb_per_read_request_unit"],
        "SNS": sum(1 for s in path if s.startswith("Notify") or s == "Wait for approval")
        * (prices["sns_per_publish"] + prices["sns_per_email_delivery"]),
        "S3": 12 * prices["s3_per_put"] + 20 * prices["s3_per_get"],
    }
    if "Prepare data" in entered:
        billed = max(args.glue_seconds, prices["glue_minimum_billed_seconds"])
        costs["Glue"] = 2 * billed / 3600 * prices["glue_per_dpu_hour"]  # 2 G.1X workers = 2 DPU
    if "Train candidate model" in entered:
        rate = prices["sagemaker_training_per_hour"][params["TrainingInstanceType"]]
        costs["SageMaker training"] = args.training_seconds / 3600 * rate
    if "Score test set" in entered:
        rate = prices["sagemaker_transform_per_hour"][params["TransformInstanceType"]]
        costs["SageMaker transform"] = args.transform_seconds / 3600 * rate
    if "Update endpoint (blue/green)" in entered:
        rate = prices["sagemaker_hosting_per_hour"][params["EndpointInstanceType"]]
        costs["SageMaker blue/green overlap"] = int(params["EndpointInstanceCount"]) * 300 / 3600 * rate
    return costs


DYNAMODB_STATES = {
    "Claim data version", "Take pipeline lock", "Give back data claim", "Register production model",
    "Retire previous model", "Point registry at new model", "Release pipeline lock",
    "Give back data claim after failure", "Release lock after failure",
}  # fmt: skip


def idle_month(
    prices: dict[str, Any], params: dict[str, str], endpoint_type: str, artifacts_gb: float
) -> dict[str, float]:
    costs = {
        "CloudWatch alarm": prices["cloudwatch_per_alarm_month"],
        "S3 storage": artifacts_gb * prices["s3_per_gb_month"],
    }
    if endpoint_type == "Instance":
        rate = prices["sagemaker_hosting_per_hour"][params["EndpointInstanceType"]]
        costs["SageMaker endpoint instances"] = int(params["EndpointInstanceCount"]) * rate * HOURS_PER_MONTH
    else:
        costs["SageMaker serverless endpoint"] = 0.0
    return costs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=ROOT / "bench" / "prices-us-east-1.json")
    parser.add_argument("--glue-seconds", type=float, default=90, help="billed Glue run time")
    parser.add_argument("--training-seconds", type=float, default=180, help="billable training time")
    parser.add_argument("--transform-seconds", type=float, default=300, help="transform job time incl. start-up")
    parser.add_argument("--lambda-seconds", type=float, default=0.3, help="average Lambda duration")
    parser.add_argument("--status-checks", type=int, default=12, help="endpoint polls until InService")
    parser.add_argument("--artifacts-gb", type=float, default=0.05, help="model and data kept in S3")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    prices = json.loads(args.prices.read_text())
    params = defaults()
    definition = json.loads((ROOT / "statemachine" / "mlops.asl.json").read_text())
    per_run = {}
    for outcome, decisions in OUTCOMES.items():
        path = walk(definition, decisions, args.status_checks)
        costs = run_cost(path, prices, params, args)
        per_run[outcome] = {"transitions": len(path), "total": sum(costs.values()), "by_service": costs}
    idle = {kind: idle_month(prices, params, kind, args.artifacts_gb) for kind in ("Serverless", "Instance")}
    result = {
        "prices": {"file": str(args.prices.relative_to(ROOT)), "region": prices["region"], "as_of": prices["as_of"]},
        "assumptions": {k: v for k, v in vars(args).items() if k not in ("prices", "quiet")},
        "per_run": per_run,
        "idle_per_month": {kind: {"total": sum(c.values()), "by_service": c} for kind, c in idle.items()},
    }
    if not args.quiet:
        say(f"Cost per run ({prices['region']} prices as of {prices['as_of']}, defaults of template.yaml)")
        say(f"{'outcome':26} {'transitions':>11} {'USD':>10}")
        for outcome, row in per_run.items():
            say(f"{outcome:26} {row['transitions']:>11} {row['total']:>10.4f}")
        say("Idle cost per month")
        for kind, row in result["idle_per_month"].items():
            say(f"{kind + ' endpoint':26} {'':>11} {row['total']:>10.2f}")
    return result


if __name__ == "__main__":
    main()
