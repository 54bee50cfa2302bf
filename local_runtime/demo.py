"""``make demo``: the whole pipeline offline, started by an S3 upload, with live progress.

Round 1 trains on part of the iris data set and deploys the first model; round 2 uploads the full
data set, so a new candidate competes with the deployed model and, if it wins, updates the endpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import ClientError
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from local_runtime import actions
from local_runtime.graph import write_svg
from local_runtime.progress import ExecutionView, StateRun, follow
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment

# Where the time goes: states whose duration is the work itself (Spark, training, scoring,
# starting the endpoint), the human review, and everything else, which is orchestration.
WORK_STATES = {
    "Prepare data",
    "Train candidate model",
    "Score the candidate on the test set",
    "Score both models on the test set",
    "Score test set",
    "Wait for endpoint",
}
HUMAN_STATES = {"Wait for approval"}
SAMPLE = "5.9,3.0,5.1,1.8"


@dataclass
class RoundResult:
    number: int
    execution_arn: str
    view: ExecutionView
    output: dict[str, Any]
    wall_seconds: float


def split_time(view: ExecutionView) -> dict[str, float]:
    """Seconds inside the work, waiting for a person, and orchestrating the rest."""
    total = (view.stopped - view.started).total_seconds() if view.stopped and view.started else 0.0
    work = sum(run.seconds or 0 for run in view.states if run.name in WORK_STATES)
    human = sum(run.seconds or 0 for run in view.states if run.name in HUMAN_STATES)
    return {"total": total, "work": work, "review": human, "orchestration": max(0.0, total - work - human)}


class Demo:
    def __init__(
        self, root: Path, output_dir: Path, interactive: bool, console: Console, overrides: dict[str, str] | None = None
    ) -> None:
        self.root = root
        self.overrides = {**PROJECT_PARAMETERS, "StatusPollSeconds": "1", **(overrides or {})}
        self.output_dir = output_dir
        self.interactive = interactive
        self.console = console
        self.definition = json.loads((root / "statemachine" / "mlops.asl.json").read_text())

    def run(self, rounds: int) -> list[RoundResult]:
        began = time.monotonic()
        stack = LocalDeployment(self.root, overrides=self.overrides)
        try:
            with self.console.status("Starting AWS on localhost and deploying template.yaml..."):
                stack.start()
            self.console.print(
                f"[bold]AWS on localhost[/] at {stack.endpoint_url} (try: aws --endpoint-url {stack.endpoint_url} "
                f"stepfunctions list-executions --state-machine-arn {stack.state_machine_arn})\n"
                f"[bold]API[/] at {stack.api_url}   deployed in {time.monotonic() - began:.1f}s"
            )
            code = stack.template.attributes["ModelCode"]["Uri"] if stack.template else "?"
            self.console.print(f"Model code published by the deploy to {code}")
            results = [self._round(stack, number) for number in range(1, rounds + 1)]
            self._finish(stack, results)
            return results
        finally:
            stack.close()

    def _round(self, stack: LocalDeployment, number: int) -> RoundResult:
        sfn = stack.client("stepfunctions")
        known = stack.executions()
        key = f"raw/iris-round-{number}.csv"
        # A first small batch (a quarter of iris), then more data (half of it): the second round's model is
        # scored against the first on the same test rows, and its review page shows both.
        data = actions.iris_csv(4 if number == 1 else 2)
        self.console.rule(
            f"Round {number}: new data s3://{stack.outputs['DataBucketName']}/{key} ({data.count(chr(10)) - 1} rows)"
        )
        started = time.monotonic()
        stack.client("s3").put_object(Bucket=stack.outputs["DataBucketName"], Key=key, Body=data.encode())
        execution_arn = stack.next_execution(known)
        self.console.print(f"The EventBridge rule started execution [bold]{execution_arn.rsplit(':', 1)[1]}[/]")
        reviewer = actions.Reviewer(
            stack.read_inbox,
            None if self.interactive else "approve",
            reviewer="make demo",
            on_email=lambda message, link: self._email(number, message, link),
        )
        view = follow(sfn, execution_arn, on_change=self._show, on_tick=reviewer)
        if reviewer.reply is not None:
            self.console.print(f"  the review page answered HTTP {reviewer.reply.status_code}")
        description = sfn.describe_execution(executionArn=execution_arn)
        output = json.loads(description.get("output") or "{}")
        result = RoundResult(number, execution_arn, view, output, time.monotonic() - started)
        self._summary(stack, result)
        return result

    def _show(self, run: StateRun) -> None:
        if run.exited is None:
            self.console.print(f"  [cyan]→[/] {run.name}", highlight=False)
        elif run.state_type == "Fail":
            cause = (run.cause or "").replace("\n", " ")[:300]
            self.console.print(f"  [red]✗ {run.name}  {run.error}[/] {cause}", highlight=False)
        elif run.error:
            # A state that exits with an error was caught: its Catch chose the next state.
            cause = (run.cause or "").replace("\n", " ")[:160]
            self.console.print(
                f"  [yellow]↪[/] {run.name}  {run.seconds:.1f}s  caught [yellow]{run.error}[/] {cause}", highlight=False
            )
        else:
            retried = f"  [yellow](retried after {', '.join(run.retried)})[/]" if run.retried else ""
            self.console.print(f"  [green]✓[/] {run.name}  [dim]{run.seconds:.1f}s[/]{retried}", highlight=False)

    def _email(self, number: int, message: dict[str, Any], link: str) -> None:
        self.console.print(Panel(message["Message"], title=f"Email: {message.get('Subject')}", expand=False))
        # What the reviewer sees, kept before the decision; the page draws its pictures inline, so one
        # file holds them all.
        page = requests.get(link, timeout=30)
        if page.status_code == 200:
            target = self.output_dir / f"round-{number}" / "review.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(page.text, encoding="utf-8")
            self.console.print(f"Review page as the reviewer sees it: {target}")
        if self.interactive:
            self.console.print(f"[bold]Open {link} in a browser and decide.[/] Waiting for you...")
        else:
            self.console.print("Approving as the page's button would (HTTP POST through the local API)...")

    def _summary(self, stack: LocalDeployment, result: RoundResult) -> None:
        output, view = result.output, result.view
        table = Table(title=f"Round {result.number}: {output.get('outcome', view.status)}", show_lines=False)
        table.add_column("state")
        table.add_column("seconds", justify="right")
        table.add_column("result")
        for run in view.states:
            if (run.seconds is not None and run.seconds >= 0.05) or run.error:
                table.add_row(run.name, f"{run.seconds or 0:.2f}", run.error or run.status)
        self.console.print(table)
        times = split_time(view)
        candidate = (output.get("candidate") or {}).get("value")
        production = (output.get("production") or {}).get("value")
        self.console.print(
            f"Outcome [bold]{output.get('outcome', view.status)}[/]: {output.get('reason', view.cause or '')}\n"
            f"Test accuracy on the same rows: candidate {candidate}, production before this run {production}\n"
            f"Time: {times['total']:.1f}s in the workflow = {times['work']:.1f}s work "
            f"(ETL, training, scoring, endpoint) + {times['review']:.1f}s review "
            f"+ {times['orchestration']:.1f}s orchestration"
        )
        picture = write_svg(
            self.definition,
            view.by_name(),
            f"Round {result.number}: {output.get('outcome', view.status)}",
            self.output_dir / f"round-{result.number}.svg",
        )
        self.console.print(f"Workflow picture: {picture}")
        evaluation = self._evaluation(stack, output.get("modelName") or "")
        if evaluation is not None:
            target = self.output_dir / f"round-{result.number}" / "evaluation.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(evaluation)
            self.console.print(f"Evaluation of both models on this run's test rows: {target}")

    @staticmethod
    def _evaluation(stack: LocalDeployment, model_name: str) -> bytes | None:
        """The run's evaluation.json; the model name is the name prefix and the run id."""
        assert stack.template
        run_id = model_name.removeprefix(f"{stack.template.parameters['NamePrefix']}-")
        try:
            return (
                stack.client("s3")
                .get_object(
                    Bucket=stack.outputs["ArtifactsBucketName"], Key=f"runs/{run_id}/evaluation/evaluation.json"
                )["Body"]
                .read()
            )
        except ClientError:
            return None

    def _finish(self, stack: LocalDeployment, results: list[RoundResult]) -> None:
        registry = stack.client("dynamodb").scan(TableName=stack.outputs["ModelRegistryTableName"])["Items"]
        models = sorted(
            (i["sk"]["S"], i["status"]["S"], i.get("accuracy", {}).get("N"))
            for i in registry
            if i["pk"]["S"] == "MODEL"
        )
        table = Table(title="Model registry")
        for column in ("model", "status", "validation accuracy"):
            table.add_column(column)
        for row in models:
            table.add_row(*(str(v) for v in row))
        self.console.print(table)
        report = self.output_dir / "access-report.txt"
        report.write_text(stack.access.report_text() + "\n")
        denied = sum(not r["allowed"] for r in stack.access.report())
        self.console.print(f"IAM: every call checked against its role; {denied} denied. Access report: {report}")
        artifacts = stack.outputs["ArtifactsBucketName"]
        self.console.print(f"Artifacts: s3://{artifacts}/runs/<run>/(data|model|test-predictions)/ in the local S3")
        url = stack.outputs["PredictUrl"]
        self.console.print(
            "Predict (while the stack runs, e.g. with `sfn-mlops up`):\n"
            f"  curl -s -X POST {url} -H 'x-api-key: {stack.api_key}' -H 'content-type: application/json' "
            f'-d \'{{"data": "{SAMPLE}"}}\''
        )
        reply = actions.predict(url, stack.api_key, SAMPLE)
        self.console.print(f"Prediction for {SAMPLE}: HTTP {reply.status_code} {reply.text}")
