"""model/train.py and model/inference.py under the SageMaker contracts, with real training."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from asl import ROOT, load_definition
from sklearn.datasets import load_digits

TRAIN = ROOT / "model" / "train.py"


def _write_channel(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    path.mkdir(parents=True)
    with (path / "part-00000.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        for label, row in zip(labels, features, strict=True):
            writer.writerow([label, *row])


@pytest.fixture(scope="module")
def digits_channels(tmp_path_factory) -> dict[str, Path]:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    root = tmp_path_factory.mktemp("opt_ml")
    cut = int(len(y) * 0.8)
    _write_channel(root / "input/data/train", x[:cut], y[:cut])
    _write_channel(root / "input/data/validation", x[cut:], y[cut:])
    return {"root": root, "train": root / "input/data/train", "validation": root / "input/data/validation"}


def _run(channels: dict[str, Path], model_dir: Path, *hyperparameters: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(channels["train"]),
        "SM_CHANNEL_VALIDATION": str(channels["validation"]),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(model_dir.parent / "output"),
    }
    return subprocess.run(
        [sys.executable, str(TRAIN), *hyperparameters], env=env, capture_output=True, text=True, check=False
    )


def _metric_definitions() -> list[dict[str, str]]:
    train = load_definition()["States"]["Train candidate model"]
    return train["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]


def _metrics(stdout: str) -> dict[str, float]:
    found = {}
    for definition in _metric_definitions():
        matches = re.findall(definition["Regex"], stdout)
        if matches:
            found[definition["Name"]] = float(matches[-1])
    return found


def test_training_on_digits_really_learns_and_prints_metrics_the_asl_parses(digits_channels, tmp_path) -> None:
    result = _run(digits_channels, tmp_path / "model", "--n_estimators", "50")
    assert result.returncode == 0, result.stderr
    metrics = _metrics(result.stdout)
    assert set(metrics) == {"validation:accuracy", "validation:f1_macro", "train:accuracy"}
    assert metrics["validation:accuracy"] > 0.8
    report = json.loads((tmp_path / "model" / "evaluation.json").read_text())
    assert report["n_features"] == 64 and len(report["classes"]) == 10
    assert report["validation_accuracy"] == pytest.approx(metrics["validation:accuracy"], abs=1e-6)


def test_training_is_deterministic_for_a_seed(digits_channels, tmp_path) -> None:
    first = _run(digits_channels, tmp_path / "a", "--n_estimators", "20", "--seed", "7")
    second = _run(digits_channels, tmp_path / "b", "--n_estimators", "20", "--seed", "7")
    assert _metrics(first.stdout) == _metrics(second.stdout)


def test_logistic_regression_is_available_as_a_hyperparameter(digits_channels, tmp_path) -> None:
    result = _run(digits_channels, tmp_path / "model", "--model", "logistic_regression", "--C", "0.5")
    assert result.returncode == 0, result.stderr
    assert _metrics(result.stdout)["validation:accuracy"] > 0.8


def test_a_bad_hyperparameter_fails_the_job_with_a_reason(digits_channels, tmp_path) -> None:
    result = _run(digits_channels, tmp_path / "model", "--n_estimators", "0")
    assert result.returncode != 0
    assert "n_estimators must be at least 1" in result.stderr


def test_unreadable_data_writes_the_failure_file(tmp_path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    (train / "bad.csv").write_text("cat,1,2\ndog,x,3\n")
    result = _run({"train": train, "validation": train}, tmp_path / "model")
    assert result.returncode == 1
    assert "non-numeric feature" in (tmp_path / "output" / "failure").read_text()


@pytest.fixture(scope="module")
def inference():
    spec = importlib.util.spec_from_file_location("model_inference", ROOT / "model" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained_model_dir(digits_channels, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("model")
    assert _run(digits_channels, model_dir, "--n_estimators", "30").returncode == 0
    return model_dir


def test_serving_functions_round_trip_csv_and_json(inference, trained_model_dir) -> None:
    model = inference.model_fn(str(trained_model_dir))
    x, y = load_digits(return_X_y=True)
    csv_body = "\n".join(",".join(str(v) for v in row) for row in x[:20])
    predictions = inference.predict_fn(inference.input_fn(csv_body, "text/csv"), model)
    assert (predictions == y[:20].astype(str)).mean() > 0.8
    body, content_type = inference.output_fn(predictions, "application/json")
    assert content_type == "application/json" and len(json.loads(body)["predictions"]) == 20
    from_json = inference.input_fn(json.dumps({"instances": x[:2].tolist()}), "application/json")
    assert from_json.shape == (2, 64)


def test_wrong_feature_count_is_reported_as_invalid_input(inference, trained_model_dir) -> None:
    model = inference.model_fn(str(trained_model_dir))
    with pytest.raises(ValueError, match="invalid input: expected 64 features per row, got 4"):
        inference.predict_fn(inference.input_fn("5.9,3.0,5.1,1.8", "text/csv"), model)
    with pytest.raises(ValueError, match="invalid input: unsupported content type"):
        inference.input_fn("x", "application/x-npy")


def _publisher():
    spec = importlib.util.spec_from_file_location("model_publish_code", ROOT / "model" / "publish_code.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_published_model_code_is_reproducible_and_named_by_its_content(tmp_path) -> None:
    publisher = _publisher()
    first = publisher.source_tarball(ROOT / "model")
    assert publisher.source_tarball(ROOT / "model") == first  # no timestamps: same code, same bytes, same key
    key = publisher.code_key("code/", first)
    assert re.fullmatch(r"code/model-source-[0-9a-f]{16}\.tar\.gz", key)
    changed = tmp_path / "model"
    changed.mkdir()
    for name in publisher.PUBLISHED:
        (changed / name).write_text((ROOT / "model" / name).read_text() + "\n# changed\n")
    assert publisher.code_key("code/", publisher.source_tarball(changed)) != key
