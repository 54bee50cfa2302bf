"""model/train.py and model/inference.py under the SageMaker contracts, with real training."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from asl import ROOT, load_definition
from handlers import load_model_module
from sklearn.datasets import load_digits

from local_runtime.sagemaker.common import CONTAINER_PYTHON

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
        **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items() if name != "root"},
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(model_dir.parent / "output"),
    }
    # As the local SageMaker runs it: a process forked from the containers' warm Python.
    out, err = model_dir.parent / f"{model_dir.name}.stdout", model_dir.parent / f"{model_dir.name}.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        code = CONTAINER_PYTHON.popen([str(TRAIN), *hyperparameters], TRAIN.parent, env, stdout, stderr).wait(600)
    return subprocess.CompletedProcess([str(TRAIN), *hyperparameters], code, out.read_text(), err.read_text())


def _metric_definitions() -> list[dict[str, str]]:
    train = load_definition()["States"]["Train candidate model"]
    return train["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]


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
    assert "the channel must hold numbers only" in (tmp_path / "output" / "failure").read_text()


def test_the_previous_default_random_forest_is_still_available(digits_channels, tmp_path) -> None:
    result = _run(digits_channels, tmp_path / "model", "--model", "random_forest", "--n_estimators", "30")
    assert result.returncode == 0, result.stderr
    assert _metrics(result.stdout)["validation:accuracy"] > 0.8
    assert json.loads((tmp_path / "model" / "evaluation.json").read_text())["hyperparameters"]["n_jobs"] == -1


def _channel_with_schema(path: Path, rows: list[list[float]], schema: dict) -> None:
    """A train channel, and the schema channel beside it."""
    _write_channel(path, np.asarray([r[1:] for r in rows]), np.asarray([int(r[0]) for r in rows]))
    (path.parent / "schema").mkdir(exist_ok=True)
    (path.parent / "schema" / "schema.json").write_text(json.dumps(schema))


COLOUR_SCHEMA = {
    "format": "sfn-mlops/schema-1",
    "label": {"name": "outcome", "type": "integer", "classes": [10, 20]},
    "features": [
        {"name": "colour", "type": "category", "categories": ["blue", "green", "red"]},
        {"name": "size", "type": "number"},
    ],
    "delimiter": ",",
}


@pytest.fixture(scope="module")
def colour_model_dir(tmp_path_factory) -> Path:
    """Label 20 exactly when the colour is red; size is noise and sometimes missing."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(600):
        colour = int(rng.integers(0, 3))
        size = float("nan") if rng.random() < 0.1 else float(rng.normal())
        rows.append([1 if colour == 2 else 0, colour if rng.random() > 0.05 else float("nan"), size])
    root = tmp_path_factory.mktemp("colours")
    _channel_with_schema(root / "train", rows[:500], COLOUR_SCHEMA)
    _write_channel(root / "validation", np.asarray([r[1:] for r in rows[500:]]), np.asarray([r[0] for r in rows[500:]]))
    model_dir = root / "model"
    result = _run({"train": root / "train", "validation": root / "validation", "schema": root / "schema"}, model_dir)
    assert result.returncode == 0, result.stderr
    assert "categorical=1" in result.stdout
    return model_dir


def test_the_schema_is_stored_in_the_model_with_categories_and_label_classes(colour_model_dir) -> None:
    schema = json.loads((colour_model_dir / "schema.json").read_text())
    assert schema["features"] == COLOUR_SCHEMA["features"]
    assert schema["label"] == {"name": "outcome", "type": "integer", "classes": [10, 20]}
    report = json.loads((colour_model_dir / "evaluation.json").read_text())
    assert report["validation_accuracy"] > 0.9 and report["label_type"] == "integer"


def test_raw_rows_and_objects_predict_labels_in_the_label_type(inference, colour_model_dir) -> None:
    served = inference.model_fn(str(colour_model_dir))
    body = json.dumps({"instances": [["red", "0.3"], ["blue", None], {"colour": "red"}, {"size": 1, "outcome": 5}]})
    prediction = inference.predict_fn(inference.input_fn(body, "application/json"), served)
    answer, content_type = inference.output_fn(prediction, "application/json")
    assert content_type == "application/json"
    assert json.loads(answer) == {"predictions": [20, 10, 20, 10]}


def test_an_unseen_category_is_treated_as_missing(inference, colour_model_dir) -> None:
    served = inference.model_fn(str(colour_model_dir))
    body = json.dumps({"instances": [["purple", 0.1], ["NA", "NaN"]]})
    prediction = inference.predict_fn(inference.input_fn(body, "application/json"), served)
    assert len(prediction["labels"]) == 2 and set(prediction["labels"]) <= {10, 20}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["red"]], "invalid input: expected 2 features per row, got 1; the features are colour, size"),
        ([["red", "big"]], "invalid input: row 1, 'size' must be a number, got 'big'"),
        ([["red", "inf"]], "invalid input: row 1, 'size' must be a finite number, got 'inf'"),
        ([{"colour": "red", "weight": 3}], "invalid input: row 1 names 'weight', which is not a feature"),
        ([[True, 1]], "invalid input: row 1, 'colour' must be a category name, got True"),
    ],
)
def test_rows_that_do_not_fit_the_schema_are_invalid_input(inference, colour_model_dir, rows, message) -> None:
    served = inference.model_fn(str(colour_model_dir))
    with pytest.raises(ValueError, match=re.escape(message)):
        inference.predict_fn(inference.input_fn(json.dumps({"instances": rows}), "application/json"), served)


def test_prepared_csv_rows_answer_label_indices_as_batch_transform_needs(inference, colour_model_dir) -> None:
    served = inference.model_fn(str(colour_model_dir))
    answer, content_type = inference.output_fn(
        inference.predict_fn(inference.input_fn("2,0.5\n0,nan\nnan,1\n", "text/csv"), served), "text/csv"
    )
    assert content_type == "text/csv" and answer.splitlines()[:2] == ["1", "0"]
    with pytest.raises(ValueError, match=re.escape("invalid input: row 1, 'colour' must be a category index, got '7'")):
        inference.predict_fn(inference.input_fn("7,0.5", "text/csv"), served)


@pytest.fixture(scope="module")
def inference():
    return load_model_module("inference")


@pytest.fixture(scope="module")
def trained_model_dir(digits_channels, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("model")
    assert _run(digits_channels, model_dir, "--n_estimators", "30").returncode == 0
    return model_dir


def test_serving_functions_round_trip_csv_and_json(inference, trained_model_dir) -> None:
    served = inference.model_fn(str(trained_model_dir))
    x, y = load_digits(return_X_y=True)
    csv_body = "\n".join(",".join(str(v) for v in row) for row in x[:20])
    prediction = inference.predict_fn(inference.input_fn(csv_body, "text/csv"), served)
    assert (np.asarray(prediction["labels"]) == y[:20]).mean() > 0.8
    body, content_type = inference.output_fn(prediction, "application/json")
    assert content_type == "application/json" and json.loads(body)["predictions"] == prediction["labels"]
    assert all(type(label) is int for label in prediction["labels"])  # numeric labels come back as numbers
    from_json = inference.input_fn(json.dumps({"instances": [[str(v) for v in x[0]]]}), "application/json")
    assert inference.predict_fn(from_json, served)["labels"] == prediction["labels"][:1]


def test_wrong_feature_count_is_reported_as_invalid_input(inference, trained_model_dir) -> None:
    served = inference.model_fn(str(trained_model_dir))
    with pytest.raises(ValueError, match="invalid input: expected 64 features per row, got 4"):
        inference.predict_fn(inference.input_fn("5.9,3.0,5.1,1.8", "text/csv"), served)
    with pytest.raises(ValueError, match="invalid input: unsupported content type"):
        inference.input_fn("x", "application/x-npy")


def test_published_model_code_is_reproducible_and_named_by_its_content(tmp_path) -> None:
    publisher = load_model_module("publish_code")
    first = publisher.source_tarball(ROOT / "model")
    assert publisher.source_tarball(ROOT / "model") == first  # no timestamps: same code, same bytes, same key
    key = publisher.code_key("code/", first)
    assert re.fullmatch(r"code/model-source-[0-9a-f]{16}\.tar\.gz", key)
    changed = tmp_path / "model"
    changed.mkdir()
    for source in publisher.PUBLISHED.values():
        (changed / source).write_text((ROOT / "model" / source).read_text() + "\n# changed\n")
    assert publisher.code_key("code/", publisher.source_tarball(changed)) != key


def test_the_same_rows_in_another_order_train_the_same_model(digits_channels, tmp_path) -> None:
    """Spark writes a split's part files in no fixed order; the model must not depend on it."""
    shuffled = {"train": tmp_path / "shuffled/train", "validation": digits_channels["validation"]}
    rows = [line for f in sorted(digits_channels["train"].glob("*.csv")) for line in f.read_text().splitlines()]
    shuffled["train"].mkdir(parents=True)
    order = np.random.default_rng(7).permutation(len(rows))
    (shuffled["train"] / "part-00001.csv").write_text("\n".join(rows[i] for i in order) + "\n")
    first, second = _run(digits_channels, tmp_path / "a"), _run(shuffled, tmp_path / "b")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert _metrics(first.stdout) == _metrics(second.stdout)
