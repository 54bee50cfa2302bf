"""``sfn-mlops``: run the pipeline offline, or drive a deployed stack, from one command line.

sfn-mlops demo                      the whole pipeline offline (what `make demo` runs)
sfn-mlops up                        start the local stack and keep it running
sfn-mlops up --template PATH        the same for any SAM template
sfn-mlops start --input '{...}'     start a run            (local: --endpoint-url, AWS: --stack)
sfn-mlops watch EXECUTION_ARN       follow a run state by state
sfn-mlops approve LINK / reject LINK
sfn-mlops predict --url URL --api-key KEY "5.9,3.0,5.1,1.8"
sfn-mlops graph EXECUTION_ARN -o run.svg
sfn-mlops smoke --config-env dev    a run that must end not-promoted, without a person (CI/CD's smoke test)
sfn-mlops inbox --endpoint-url URL  the emails the local stack has sent
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from local_runtime import actions
from local_runtime.graph import write_svg
from local_runtime.progress import ExecutionView, follow, history

ROOT = Path(__file__).resolve().parent.parent
# The terminal belongs to this CLI; handler and service logs go to a file (see service_logs).
console = Console(file=sys.__stdout__)


@contextlib.contextmanager
def service_logs(path: Path) -> Iterator[None]:
    """Lambda handlers' output and the services' logs go to a file, as they would go to CloudWatch Logs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        handler = logging.StreamHandler(log)
        logging.getLogger().addHandler(handler)
        saved, sys.stdout = sys.stdout, log
        try:
            yield
        finally:
            sys.stdout = saved
            logging.getLogger().removeHandler(handler)


def _session(endpoint_url: str | None, region: str | None = None) -> boto3.Session:
    """AWS's own configuration for a deployed stack. For the local endpoint, the local region and, when none
    are configured, the local runtime's credentials: `--endpoint-url` alone is enough."""
    if not endpoint_url:
        return boto3.Session(region_name=region)
    configured = boto3.Session()
    local = {} if configured.get_credentials() else {
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"
    }  # fmt: skip
    return boto3.Session(region_name=region or configured.region_name or "us-east-1", **local)


def _clients(args: argparse.Namespace) -> tuple[Any, dict[str, str]]:
    """A Step Functions client and the stack outputs, for the local stack or a deployed one."""
    session = _session(args.endpoint_url)
    sfn = session.client("stepfunctions", endpoint_url=args.endpoint_url)
    if args.stack:
        cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url)
        return sfn, actions.stack_outputs(cloudformation, args.stack)
    # The local stack's own machine; "<name>--<case>" copies belong to mock-config test cases.
    machines = [m for m in sfn.list_state_machines()["stateMachines"] if "--" not in m["name"]]
    return sfn, {"StateMachineArn": machines[0]["stateMachineArn"]} if machines else {}


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """--parameter NAME=VALUE, as template parameter overrides."""
    overrides = {}
    for pair in args.parameter:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise SystemExit(f"--parameter takes NAME=VALUE, got {pair!r}")
        overrides[name] = value
    return overrides


def cmd_demo(args: argparse.Namespace) -> int:
    from local_runtime.demo import Demo

    log = Path(args.output) / "local-aws.log"
    console.print(f"Lambda and service logs: {log}")
    with service_logs(log):
        results = Demo(ROOT, Path(args.output), args.interactive, console, _overrides(args)).run(args.rounds)
    failed = [r for r in results if r.view.status != "SUCCEEDED"]
    return 1 if failed else 0


def deployment_for(args: argparse.Namespace) -> Any:
    """The LocalDeployment `up` starts: this project's template (with its reviewer address), or --template's."""
    from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

    settings = {
        "mock_config": Path(args.mock_config) if args.mock_config else None,
        "port": args.port,
        "fire_schedules": args.fire_schedules,
    }
    if args.template is None:
        return LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, **_overrides(args)}, **settings)
    template = Path(args.template).resolve()
    stack_name = re.sub(r"[^A-Za-z0-9-]", "-", template.parent.name).strip("-") or "local"
    return LocalDeployment(template.parent, stack_name, _overrides(args), template=template.name, **settings)


def cmd_up(args: argparse.Namespace) -> int:
    log = ROOT / "demo-output" / "local-aws.log"
    console.print(f"Lambda and service logs: {log}")
    with service_logs(log), deployment_for(args) as stack:
        apis = "".join(f"API {name}: {url}\n" for name, url in stack.api_urls.items())
        api_key = f"API key: {stack.api_key}" if stack.api_url else ""  # REST APIs' key; HTTP APIs take none
        console.print(f"AWS endpoint: {stack.endpoint_url}\n{apis}{api_key}".rstrip(), highlight=False)
        console.print_json(json.dumps(stack.outputs))
        for skipped in stack.skipped:
            console.print(f"[yellow]Skipped[/] {skipped}: not emulated locally; a request naming it fails")
        console.print(
            f"Local inbox (what the email subscriptions receive): sfn-mlops inbox --endpoint-url {stack.endpoint_url}\n"
            + (
                f'Try: sfn-mlops start --endpoint-url {stack.endpoint_url} --input \'{{"trigger": "manual"}}\'\n'
                if args.template is None
                else ""
            )
            + f"AWS CLI: export AWS_ENDPOINT_URL={stack.endpoint_url} AWS_DEFAULT_REGION=us-east-1 "
            "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\nCtrl-C stops everything."
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    sfn, outputs = _clients(args)
    arn = sfn.start_execution(stateMachineArn=outputs["StateMachineArn"], input=args.input)["executionArn"]
    print(arn)  # plain, unwrapped: scripts capture it
    return 0


def _print_run(run: Any) -> None:
    mark = "→" if run.exited is None else ("✗" if run.error else "✓")
    seconds = f" {run.seconds:.1f}s" if run.seconds is not None else ""
    console.print(f"{mark} {run.name}{seconds}{'  ' + run.error if run.error else ''}", highlight=False)


def cmd_watch(args: argparse.Namespace) -> int:
    sfn, _ = _clients(args)
    # Each poll reads the whole history; against AWS, poll gently (GetExecutionHistory is throttled).
    view = follow(sfn, args.execution_arn, on_change=_print_run, poll_seconds=2 if args.stack else 0.2)
    console.print(f"{view.status} {view.error or ''}")
    return 0 if view.status == "SUCCEEDED" else 1


def cmd_decide(args: argparse.Namespace) -> int:
    reply = actions.decide(args.link, args.command, reviewer=args.reviewer, comment=args.comment)
    if reply.is_redirect:
        console.print(
            "This stack lets only a signed-in approver decide (ReviewerAuth=cognito): open the link in a browser."
        )
        return 1
    console.print(f"HTTP {reply.status_code}")
    return 0 if reply.status_code == 200 else 1


def cmd_smoke(args: argparse.Namespace) -> int:
    stack, region = args.stack, None
    if args.config_env:
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        settings = config.get(args.config_env, {}).get("global", {}).get("parameters", {})
        if "stack_name" not in settings:
            console.print(f"samconfig.toml has no stack_name for the environment {args.config_env!r}")
            return 2
        stack, region = settings["stack_name"], settings.get("region")
    session = _session(args.endpoint_url, region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)

    console.print(f"Smoke run of {stack}: iris with label noise, accuracy threshold 1, expecting not-promoted")
    result = actions.smoke_run(client, stack, args.timeout, poll_seconds=0.5 if args.endpoint_url else 5)
    console.print(f"{result.status} {result.outcome}: {result.reason}\nmodel code: {result.model_code}")
    console.print(f"execution: {result.execution_arn}\n{'PASSED' if result.passed else 'FAILED'}")
    return 0 if result.passed else 1


def cmd_inbox(args: argparse.Namespace) -> int:
    """The emails the local stack has sent: its email subscriptions deliver to SQS queues named *-email-N."""
    sqs = _session(args.endpoint_url).client("sqs", endpoint_url=args.endpoint_url)
    queues = [url for url in sqs.list_queues().get("QueueUrls", []) if re.search(r"-email-\d+$", url)]
    emails: list[dict[str, Any]] = []
    for queue in queues:
        # Read without taking: each batch stays hidden while the next is read, then all are put back.
        received = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        ):
            received += batch
        for start in range(0, len(received), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                       for i, m in enumerate(received[start : start + 10])]  # fmt: skip
            sqs.change_message_visibility_batch(QueueUrl=queue, Entries=entries)
        emails += [json.loads(m["Body"]) for m in received]
    emails.sort(key=lambda email: email.get("Timestamp", ""))
    for email in emails:
        console.print(f"[bold]{email.get('Subject', '(no subject)')}[/bold]  {email.get('Timestamp', '')}")
        # Not wrapped: a wrapped link cannot be copied or clicked.
        console.print(email.get("Message", ""), highlight=False, markup=False, soft_wrap=True)
        link = actions.review_link(email.get("Message", ""))
        if link:
            console.print(f"Review link: {link}", highlight=False, soft_wrap=True)
        console.print()
    console.print(f"{len(emails)} email(s) in {len(queues)} local inbox(es)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    reply = actions.predict(args.url, args.api_key, args.data)
    console.print(f"HTTP {reply.status_code} {reply.text}")
    return 0 if reply.status_code == 200 else 1


def cmd_graph(args: argparse.Namespace) -> int:
    sfn, _ = _clients(args)
    view = ExecutionView()
    for event in history(sfn, args.execution_arn):
        view.apply(event)
    definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=args.execution_arn)["definition"])
    print(write_svg(definition, view.by_name(), args.execution_arn.rsplit(":", 1)[1], Path(args.output)))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="sfn-mlops", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint-url", help="the local stack's AWS endpoint (default: AWS_ENDPOINT_URL or AWS)")
        p.add_argument("--stack", help="a deployed CloudFormation stack to use instead")

    demo = sub.add_parser("demo", help="run the pipeline offline, end to end")
    demo.add_argument("--rounds", type=int, default=2, help="1 deploys a first model; 2 also updates it")
    demo.add_argument("--interactive", action="store_true", help="wait for you to click the review link")
    demo.add_argument("--output", default=str(ROOT / "demo-output"), help="where workflow pictures go")
    demo.set_defaults(run=cmd_demo)
    up = sub.add_parser("up", help="start the local stack (this project's, or --template's) and keep it running")
    up.add_argument("--template", help="a SAM or CloudFormation template to deploy instead of this project's")
    up.add_argument("--mock-config", help="a Step Functions Local MockConfigFile (default: statemachine/test/...)")
    up.add_argument("--port", type=int, default=0, help="the AWS endpoint's port (default: a free one)")
    up.add_argument("--fire-schedules", action="store_true", help="fire every enabled schedule once after deploy")
    up.set_defaults(run=cmd_up)
    for p in (demo, up):
        p.add_argument(
            "--parameter", action="append", default=[], metavar="NAME=VALUE", help="template parameter override"
        )
    start = sub.add_parser("start", help="start a run")
    start.add_argument("--input", default='{"trigger": "manual"}')
    target(start)
    start.set_defaults(run=cmd_start)
    watch = sub.add_parser("watch", help="follow an execution")
    watch.add_argument("execution_arn")
    target(watch)
    watch.set_defaults(run=cmd_watch)
    for name in ("approve", "reject"):
        decide = sub.add_parser(name, help=f"{name} a model from its review link")
        decide.add_argument("link")
        decide.add_argument("--reviewer", default="cli")
        decide.add_argument("--comment", default="")
        decide.set_defaults(run=cmd_decide)
    predict = sub.add_parser("predict", help="POST one or more CSV rows to /predict")
    predict.add_argument("data")
    predict.add_argument("--url", required=True)
    predict.add_argument("--api-key", required=True)
    predict.set_defaults(run=cmd_predict)
    smoke = sub.add_parser("smoke", help="a run of a deployed stack that must end not-promoted, unattended")
    where = smoke.add_mutually_exclusive_group(required=True)
    where.add_argument("--config-env", help="an environment of samconfig.toml, e.g. dev")
    where.add_argument("--stack", help="the stack's name")
    smoke.add_argument("--endpoint-url", help="the local runtime's AWS endpoint")
    smoke.add_argument("--timeout", type=float, default=3600)
    smoke.set_defaults(run=cmd_smoke)
    inbox = sub.add_parser("inbox", help="the emails the local stack has sent, review links included")
    inbox.add_argument("--endpoint-url", required=True, help="the local runtime's AWS endpoint")
    inbox.set_defaults(run=cmd_inbox)
    graph = sub.add_parser("graph", help="draw an execution as SVG")
    graph.add_argument("execution_arn")
    graph.add_argument("-o", "--output", default="execution.svg")
    target(graph)
    graph.set_defaults(run=cmd_graph)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "command", None) in ("approve", "reject"):
        args.command = "approve" if args.command == "approve" else "reject"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
