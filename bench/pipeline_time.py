"""Offline pipeline time: from the triggering S3 put to the endpoint answering, split into work and orchestration.

Runs the demo pipeline N times on one local stack that is already up (each run deploys: the first
creates the endpoint, later ones update it). "Work" is the time inside the states that do the work
(Spark ETL, the training process, the batch transform, and waiting for the endpoint to start);
"orchestration" is everything else: the engine, the providers, the Lambda calls, polling.
The automatic approval is left out of both, as a person's review would be.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from report import say

from local_runtime import actions
from local_runtime.actions import iris_csv
from local_runtime.demo import HUMAN_STATES, SAMPLE, WORK_STATES, split_time
from local_runtime.progress import follow
from local_runtime.stack import LocalDeployment, wait_for


def one_run(stack: LocalDeployment, number: int) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    known = stack.executions()
    evaluations, evaluation_seconds = stack.access.evaluations, stack.access.evaluation_seconds
    taken_warm = stack.sagemaker.server_pool.taken_warm
    started = time.perf_counter()
    stack.client("s3").put_object(
        Bucket=stack.outputs["DataBucketName"], Key=f"raw/bench-{number}.csv", Body=iris_csv(1).encode()
    )
    arn = stack.next_execution(known)
    view = follow(sfn, arn, on_tick=actions.Reviewer(stack.read_inbox, reviewer="bench"), poll_seconds=0.05)
    reply = wait_for(
        lambda: (r := actions.predict(stack.outputs["PredictUrl"], stack.api_key, SAMPLE)).status_code == 200 and r,
        timeout=30,
    )
    wall = time.perf_counter() - started
    assert reply.status_code == 200 and view.status == "SUCCEEDED", view.error
    per_state: dict[str, float] = {}
    for run in view.states:
        per_state[run.name] = per_state.get(run.name, 0.0) + (run.seconds or 0.0)
    # The same split as the demo's; the wall time also counts the trigger and the first prediction.
    times = split_time(view)
    work, review_time = times["work"], times["review"]
    measured = wall - review_time
    return {
        "wall_seconds": wall,
        "review_seconds": review_time,
        "work_seconds": work,
        "orchestration_seconds": measured - work,
        "orchestration_share": (measured - work) / measured,
        "states_entered": len(view.states),
        "iam_evaluations": stack.access.evaluations - evaluations,
        "iam_evaluation_seconds": stack.access.evaluation_seconds - evaluation_seconds,
        "per_state_seconds": per_state,
        "model_servers_taken_warm": stack.sagemaker.server_pool.taken_warm - taken_warm,
    }


def main(stack: LocalDeployment, runs: int = 3) -> dict[str, Any]:
    results = [one_run(stack, number) for number in range(1, runs + 1)]
    median = statistics.median(r["wall_seconds"] for r in results)
    middle = min(results, key=lambda r: abs(r["wall_seconds"] - median))
    summary = {
        "runs": runs,
        "median_wall_seconds": median,
        "median_run": middle,
        "orchestration_share_per_run": [r["orchestration_share"] for r in results],
        "target_orchestration_share": 0.10,
        "iam_evaluations_per_run": middle["iam_evaluations"],
        "iam_evaluation_seconds_per_run": middle["iam_evaluation_seconds"],
        "iam_share_of_wall_time": middle["iam_evaluation_seconds"] / median,
        "target_iam_share": 0.05,
        "model_servers_taken_warm_per_run": middle["model_servers_taken_warm"],
    }
    say(f"Offline pipeline, S3 put -> endpoint answering, median of {runs} runs: {median:.2f}s")
    say(f"{'state':34} {'seconds':>8}  kind")
    for name, seconds in sorted(middle["per_state_seconds"].items(), key=lambda kv: -kv[1])[:10]:
        kind = "work" if name in WORK_STATES else ("review" if name in HUMAN_STATES else "orchestration")
        say(f"{name:34} {seconds:>8.2f}  {kind}")
    say(
        f"work {middle['work_seconds']:.2f}s, orchestration {middle['orchestration_seconds']:.2f}s "
        f"({middle['orchestration_share']:.1%} of the run without the review; target < 10%), "
        f"automatic review {middle['review_seconds']:.2f}s"
    )
    say(
        f"IAM evaluation: {middle['iam_evaluations']} decisions, {middle['iam_evaluation_seconds'] * 1000:.1f} ms "
        f"per run ({summary['iam_share_of_wall_time']:.2%} of the wall time; target < 5%)"
    )
    say(f"Model servers taken warm from the pool instead of started: {middle['model_servers_taken_warm']} per run")
    return summary
