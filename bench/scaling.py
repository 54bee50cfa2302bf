"""How the offline pipeline scales with the data: rows -> per-state seconds and peak memory.

    .venv/bin/python bench/scaling.py                      # 150, 20k, 200k and 1M rows, both models
    .venv/bin/python bench/scaling.py --rows 150 20000     # a quicker table
    .venv/bin/python bench/scaling.py --baseline-max-rows 1000000   # the old default at 1M too (~10 min)

Data: scikit-learn's make_classification, 20 features (10 informative), 2 classes, written as a CSV
with a header and uploaded to the raw-data prefix of a fresh local stack per run; the run is followed
to its end (the review approved at once) and timed per state from the execution history. "Peak memory"
is the largest resident set of the whole local stack (this process, Spark's JVM, the training process
and the model servers), sampled every 0.2 s. The default model (hist_gradient_boosting) is compared with
the previous default, a 100-tree random forest on one core (`{"model": "random_forest", "n_jobs": 1}`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from report import say  # noqa: E402

from local_runtime import actions  # noqa: E402
from local_runtime.progress import follow  # noqa: E402
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment  # noqa: E402

# Column -> the states it sums. A fresh stack has no production model, so the evaluation scores the
# candidate alone; the column also counts the two-model state should a stack be reused.
STATES = {
    "Prepare": ("Prepare data",),
    "Train": ("Train candidate model",),
    "Evaluate": ("Score the candidate on the test set", "Score both models on the test set"),
    "Score": ("Score test set",),
}
MODELS = {
    "hist_gradient_boosting": {},
    "random_forest (previous default)": {"model": "random_forest", "n_jobs": "1"},
}


def dataset(rows: int, path: Path) -> Path:
    """make_classification as a CSV file, written in blocks so a million rows stay cheap."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)
    with path.open("w") as handle:
        handle.write(",".join([*(f"f{i}" for i in range(1, 21)), "label"]) + "\n")
        for start in range(0, rows, 50_000):
            block = [
                ",".join([*(f"{v:.5g}" for v in features), str(label)])
                for features, label in zip(x[start : start + 50_000], y[start : start + 50_000], strict=True)
            ]
            handle.write("\n".join(block) + "\n")
    return path


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total


class PeakMemory:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_rss(os.getpid()))

    def __enter__(self) -> PeakMemory:
        self.peak = _tree_rss(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(csv_path: Path, hyperparameters: dict[str, str]) -> dict[str, Any]:
    with (
        LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as stack,
        PeakMemory() as memory,
    ):
        key = f"manual/{csv_path.name}"
        stack.client("s3").upload_file(str(csv_path), stack.outputs["DataBucketName"], key)
        run_input = {
            "rawDataUri": f"s3://{stack.outputs['DataBucketName']}/{key}",
            "dataVersion": f"scaling/{csv_path.name}/{time.time_ns()}",
            "hyperparameters": hyperparameters,
        }
        sfn = stack.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, input=json.dumps(run_input))["executionArn"]
        started = time.perf_counter()
        view = follow(sfn, arn, on_tick=actions.Reviewer(stack.read_inbox, reviewer="scaling"), poll_seconds=0.2)
        wall = time.perf_counter() - started
        review = sum(run.seconds or 0.0 for run in view.states if run.name == "Wait for approval")
    per_state: dict[str, float] = {}
    for run in view.states:
        per_state[run.name] = per_state.get(run.name, 0.0) + (run.seconds or 0.0)
    return {
        "status": view.status,
        "error": view.error,
        "per_state_seconds": {
            column: round(sum(per_state[name] for name in names if name in per_state), 3)
            if any(name in per_state for name in names)
            else None
            for column, names in STATES.items()
        },
        "whole_run_seconds": wall - review,
        "peak_rss_bytes": memory.peak,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[150, 20_000, 200_000, 1_000_000])
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=200_000,
        help="run the previous default model only up to this many rows (it needs ~9 minutes to train on 1M)",
    )
    args = parser.parse_args(argv)
    work = ROOT / "build" / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    say(f"{'rows':>9}  {'model':32} " + " ".join(f"{c:>8}" for c in STATES) + f" {'whole run':>10} {'peak RSS':>9}")
    for rows in args.rows:
        csv_path = dataset(rows, work / f"classification-{rows}.csv")
        for model, hyperparameters in MODELS.items():
            if hyperparameters and rows > args.baseline_max_rows:
                continue
            result = {"rows": rows, "model": model, **one_run(csv_path, hyperparameters)}
            results.append(result)
            seconds = [result["per_state_seconds"][s] for s in STATES]
            cells = " ".join(f"{s:>8.1f}" if s is not None else f"{'-':>8}" for s in seconds)
            say(
                f"{rows:>9,}  {model:32} {cells} {result['whole_run_seconds']:>9.1f}s "
                f"{result['peak_rss_bytes'] / 2**30:>7.2f}GB"
                + ("" if result["status"] == "SUCCEEDED" else f"  {result['status']} {result['error']}")
            )
        csv_path.unlink()
    return {"cores": os.cpu_count(), "runs": results}


if __name__ == "__main__":
    out = main()
    target = ROOT / "bench" / "results" / "scaling.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    say(f"Figures written to {target.relative_to(ROOT)}")
