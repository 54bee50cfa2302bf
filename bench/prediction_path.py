"""Prediction path: the local API's POST /predict, the endpoint's /invocations, and predict_fn itself.

A bounded load generator on 127.0.0.1 (a fixed number of requests over a few threads) measures
requests/s and p50/p99 latency for each layer in the same run, against the deployed model.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from report import say

from local_runtime import s3files
from local_runtime.demo import SAMPLE
from local_runtime.stack import LocalDeployment

ROOT = Path(__file__).resolve().parent.parent
ROW = SAMPLE.splitlines()[0]


def measure(call: Callable[[], None], requests_total: int, threads: int) -> dict[str, float]:
    def timed(_: int) -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    for _ in range(10):  # warm up connections and caches
        call()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = sorted(pool.map(timed, range(requests_total)))
    elapsed = time.perf_counter() - started
    return {
        "requests": requests_total,
        "threads": threads,
        "requests_per_second": requests_total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main(stack: LocalDeployment, requests_total: int = 300, concurrency: tuple[int, ...] = (1, 4)) -> dict[str, Any]:
    return {f"{threads}_threads": one_level(stack, requests_total, threads) for threads in concurrency}


def one_level(stack: LocalDeployment, requests_total: int, threads: int) -> dict[str, Any]:
    api_session = requests.Session()
    url, key = stack.outputs["PredictUrl"], stack.api_key

    def via_api() -> None:
        reply = api_session.post(url, json={"data": ROW}, headers={"x-api-key": key}, timeout=30)
        assert reply.status_code == 200, reply.text

    endpoint = stack.sagemaker.endpoints[stack.outputs["EndpointName"]]
    server_url = f"http://127.0.0.1:{endpoint.server.port}/invocations"
    endpoint_session = requests.Session()

    def via_invocations() -> None:
        reply = endpoint_session.post(server_url, data=ROW, headers={"Content-Type": "text/csv"}, timeout=30)
        assert reply.status_code == 200, reply.text

    model_name = stack.sagemaker.configs[endpoint.config_name]["ProductionVariants"][0]["ModelName"]
    container = stack.sagemaker.models[model_name]["PrimaryContainer"]
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = s3files.extract_tarball(stack.client("s3"), container["ModelDataUrl"], Path(scratch) / "model")
        spec = importlib.util.spec_from_file_location("bench_inference", ROOT / "model" / "inference.py")
        inference = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(inference)
        model = inference.model_fn(str(model_dir))

    def raw() -> None:
        inference.predict_fn(inference.input_fn(ROW, "text/csv"), model)

    layers = {
        "POST /predict (API -> Lambda -> InvokeEndpoint)": measure(via_api, requests_total, threads),
        "POST /invocations (model server)": measure(via_invocations, requests_total, threads),
        "predict_fn (in-process)": measure(raw, requests_total, threads),
    }
    raw_rps = layers["predict_fn (in-process)"]["requests_per_second"]
    say(f"{requests_total} requests over {threads} thread(s)")
    say(f"{'layer':48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of raw':>7}")
    for name, row in layers.items():
        row["share_of_raw_throughput"] = row["requests_per_second"] / raw_rps
        say(
            f"{name:48} {row['requests_per_second']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['share_of_raw_throughput']:>7.0%}"
        )
    say("target: the API path reaches at least half of the raw throughput")
    return {"layers": layers, "target_share_of_raw": 0.5}
