"""`make bench`: every benchmark, one compact table each, and the same figures as JSON in bench/results/.

.venv/bin/python bench/run.py [--runs 3] [--skip-tests]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import cold_start  # noqa: E402
import cost  # noqa: E402
import distributed_training  # noqa: E402
import jsonata_conformance  # noqa: E402
import pipeline_time  # noqa: E402
import prediction_path  # noqa: E402
import test_suite_time  # noqa: E402
from report import say  # noqa: E402

from local_runtime.cli import service_logs  # noqa: E402
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment  # noqa: E402

PACKAGES = ("moto", "boto3", "scikit-learn", "pyspark", "aws-lambda-powertools", "aws-sam-cli")


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
    }


def section(title: str) -> None:
    say(f"\n== {title}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="pipeline runs for the median")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the test-suite timing")
    args = parser.parse_args()
    results: dict[str, object] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    log = ROOT / "bench" / "results" / "local-aws.log"
    say(f"Lambda and service logs: {log.relative_to(ROOT)}")
    with service_logs(log), LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as stack:
        section("1. Offline pipeline time")
        results["pipeline"] = pipeline_time.main(stack, args.runs)
        section("3. Prediction path")
        results["prediction"] = prediction_path.main(stack)
        section("6. Training on one host and on two")
        results["distributed_training"] = distributed_training.main(stack)
    section("2. Lambda cold start and size")
    results["lambda"] = cold_start.main()
    section("4. Cost on AWS, on paper")
    measured = results["pipeline"]["median_run"]["per_state_seconds"]  # type: ignore[index]
    results["cost"] = cost.main([])
    results["cost_with_local_durations"] = cost.main(
        [
            "--quiet",
            "--glue-seconds", str(measured.get("Prepare data", 0)),
            "--training-seconds", str(measured.get("Train candidate model", 0)),
            "--transform-seconds", str(measured.get("Score test set", 0)),
        ]
    )  # fmt: skip
    if not args.skip_tests:
        section("5. Test suite time")
        results["tests"] = test_suite_time.main()
    section("7. JSONata conformance")
    results["jsonata"] = jsonata_conformance.main([])
    out = ROOT / "bench" / "results" / "latest.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"\nFigures written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
