"""etl/prepare_data.py on local Spark: splits, data-quality accounting and clear failures, and the corpus
of messy CSVs in tests/data/messy taken through data preparation, training and prediction."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from asl import ROOT
from sklearn.datasets import load_iris

from local_runtime.sagemaker.common import CONTAINER_PYTHON

SCRIPT = ROOT / "etl" / "prepare_data.py"
CORPUS = ROOT / "tests" / "data" / "messy"
EXPECTED = {k: v for k, v in json.loads((CORPUS / "expected.json").read_text()).items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def etl():
    spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("prepare-data-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


def iris_csv(path: Path, bad_lines: list[str] = ()) -> Path:
    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = [",".join([*names, "label"])]
    lines += [
        ",".join([*(str(v) for v in row), iris.target_names[t]]) for row, t in zip(iris.data, iris.target, strict=True)
    ]
    lines += list(bad_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(folder: Path) -> list[list[str]]:
    return [line.split(",") for f in sorted(folder.glob("*.csv")) for line in f.read_text().splitlines() if line]


def _report(output: Path) -> dict:
    (part,) = [p for p in (output / "data-quality").iterdir() if p.name.startswith("part-")]
    return json.loads(part.read_text())


def _args(raw: Path, out: Path, **extra: str) -> dict[str, str]:
    return {
        "raw_input_uri": str(raw),
        "output_uri": str(out),
        "label_column": "label",
        "max_bad_row_fraction": "0.05",
        "seed": "42",
        **extra,
    }


def test_splits_are_label_first_stratified_numeric_and_add_up(etl, spark, tmp_path) -> None:
    bad = ["5.1,3.5,1.4,oops,setosa", "4.9,3.0,1.4,0.2", "6.0,2.2,5.0,1.5,virginica,extra", "5.0,3.4,1.5,0.2,"]
    report = etl.run(spark, _args(iris_csv(tmp_path / "iris.csv", bad), tmp_path / "out"))
    splits = {name: _rows(tmp_path / "out" / name) for name in ("train", "validation", "test")}
    assert sum(len(rows) for rows in splits.values()) == 150
    assert report["total_rows"] == 154 and report["bad_rows"] == 4
    assert report["bad_rows_by_reason"] == {
        "non-numeric value in a numeric column": 1,
        "wrong number of columns": 2,
        "missing label": 1,
    }
    assert {name: len(rows) for name, rows in splits.items()} == report["split_rows"]
    for rows in splits.values():
        # The label is the index of its class in the schema, so no field can hold a comma or a quote.
        assert {row[0] for row in rows} == {"0", "1", "2"}
        assert all(len(row) == 5 and all(float(v) == float(v) for v in row) for row in rows)
    schema = json.loads((tmp_path / "out" / "schema" / "schema.json").read_text())
    assert schema["label"] == {"name": "label", "type": "string", "classes": ["setosa", "versicolor", "virginica"]}
    assert [f["name"] for f in schema["features"]] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert {f["type"] for f in schema["features"]} == {"number"}
    assert _report(tmp_path / "out") == report


def test_splits_are_deterministic_for_a_seed(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv")
    etl.run(spark, _args(raw, tmp_path / "a"))
    etl.run(spark, _args(raw, tmp_path / "b"))
    assert _rows(tmp_path / "a" / "test") == _rows(tmp_path / "b" / "test")


def test_large_inputs_are_split_by_hash_without_a_sort_deterministically(etl, spark, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(etl, "EXACT_SPLIT_MAX_ROWS", 0)
    raw = iris_csv(tmp_path / "iris.csv")
    first = etl.run(spark, _args(raw, tmp_path / "a"))
    etl.run(spark, _args(raw, tmp_path / "b"))
    assert _rows(tmp_path / "a" / "test") == _rows(tmp_path / "b" / "test")
    assert sum(first["split_rows"].values()) == 150 and 80 <= first["split_rows"]["train"] <= 125
    assert {row[0] for row in _rows(tmp_path / "a" / "train")} == {"0", "1", "2"}


def test_too_many_bad_rows_fail_the_job_with_the_counts_and_a_report(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv", ["not,a,number,at,all"] * 20)
    with pytest.raises(
        etl.DataQualityError, match=r"20 of 170 rows \(11.8%\) are malformed, more than the allowed 5.0%"
    ):
        etl.run(spark, _args(raw, tmp_path / "out"))
    report = _report(tmp_path / "out")
    assert report["status"] == "failed" and report["bad_rows"] == 20
    assert not (tmp_path / "out" / "train").exists()


def test_a_label_column_with_no_close_header_says_what_to_rename(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv")
    with pytest.raises(etl.DataQualityError) as failure:
        etl.run(spark, _args(raw, tmp_path / "out", label_column="species"))
    assert str(failure.value) == (
        "The label column 'species' is not in the header of iris.csv: rename the column that holds the labels to "
        "'species', or set the LabelColumn parameter to its name. The header has: sepal_length, sepal_width, "
        "petal_length, petal_width, label."
    )


def test_a_delimiter_given_as_a_job_argument_is_used(etl, spark, tmp_path) -> None:
    raw = tmp_path / "iris.csv"
    raw.write_text(iris_csv(tmp_path / "commas.csv").read_text().replace(",", ";"))
    report = etl.run(spark, _args(raw, tmp_path / "out", delimiter=";"))
    assert report["delimiter"] == ";" and sum(report["split_rows"].values()) == 150
    with pytest.raises(etl.DataQualityError, match=r"^The delimiter ':' is not supported"):
        etl.run(spark, _args(raw, tmp_path / "out2", delimiter=":"))


def test_rare_and_missing_categories_are_kept_as_missing_values(etl, spark, tmp_path) -> None:
    lines = ["colour,size,label"]
    lines += [f"{'red' if i % 2 else 'blue'},{i % 7},{'a' if i % 2 else 'b'}" for i in range(60)]
    lines += ["NA,3,a", ",4,b", "?,5,a"]
    raw = tmp_path / "colours.csv"
    raw.write_text("\n".join(lines) + "\n")
    report = etl.run(spark, _args(raw, tmp_path / "out"))
    assert report["bad_rows"] == 0 and sum(report["split_rows"].values()) == 63
    colour = report["schema"]["features"][0]
    assert colour == {"name": "colour", "type": "category", "categories": ["blue", "red"]}
    values = [row[1] for name in ("train", "validation", "test") for row in _rows(tmp_path / "out" / name)]
    assert values.count("nan") == 3 and set(values) == {"0", "1", "nan"}


def test_the_script_runs_as_a_job_with_glue_style_arguments(spark, tmp_path, monkeypatch, capsys) -> None:
    """As Glue's warm driver runs it: as __main__ with Glue's arguments, in a driver whose session runs."""
    raw = iris_csv(tmp_path / "iris.csv")
    out = tmp_path / "out"
    argv = ["--JOB_NAME", "prepare", "--raw_input_uri", str(raw), "--output_uri", str(out), "--label_column", "label"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    printed = capsys.readouterr().out
    assert json.loads(printed.strip().splitlines()[-1])["status"] == "succeeded"
    assert sum(len(_rows(out / name)) for name in ("train", "validation", "test")) == 150


# ---------------------------------------------------------------------------------------------------
# The messy-CSV corpus: each file either trains a model that predicts well, or fails with its sentence
# ---------------------------------------------------------------------------------------------------


def _review_scoring():
    spec = importlib.util.spec_from_file_location("review", ROOT / "functions" / "approval_request" / "review.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_predictions


def _inference():
    spec = importlib.util.spec_from_file_location("model_inference", ROOT / "model" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(prepared: Path, model_dir: Path) -> None:
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(prepared / "train"),
        "SM_CHANNEL_VALIDATION": str(prepared / "validation"),
        "SM_CHANNEL_SCHEMA": str(prepared / "schema"),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(model_dir.parent / "output"),
    }
    train, log_path = ROOT / "model" / "train.py", model_dir.parent / "train.log"
    with log_path.open("wb") as log:  # as the local SageMaker runs it, forked from the containers' warm Python
        code = CONTAINER_PYTHON.popen([str(train)], train.parent, env, log, subprocess.STDOUT).wait(600)
    assert code == 0, log_path.read_text()[-2000:]


def _raw_records(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *records = list(csv.reader(handle, delimiter=delimiter))
    return [h.strip() for h in header], [r for r in records if r]


TRAINS = sorted(name for name, case in EXPECTED.items() if "trains" in case)
FAILS = sorted(name for name, case in EXPECTED.items() if "fails" in case)


@pytest.mark.parametrize("name", TRAINS)
def test_a_messy_csv_trains_a_model_that_scores_its_test_set_and_answers_raw_rows(etl, spark, tmp_path, name) -> None:
    case = EXPECTED[name]
    report = etl.run(spark, _args(CORPUS / name, tmp_path / "prepared", label_column=case["label_column"]))
    assert report["status"] == "succeeded"
    _train(tmp_path / "prepared", tmp_path / "model")
    inference = _inference()
    served = inference.model_fn(str(tmp_path / "model"))
    assert served["schema"]["label"]["type"] == case["trains"]["label_type"]

    # Batch transform: the test split without its label column in, one line per row out, joined back
    # to the label and scored the way the review email scores it.
    test_rows = _rows(tmp_path / "prepared" / "test")
    body = "\n".join(",".join(row[1:]) for row in test_rows)
    answer, _ = inference.output_fn(inference.predict_fn(inference.input_fn(body, "text/csv"), served), "text/csv")
    joined = [f"{row[0]},{p}" for row, p in zip(test_rows, answer.splitlines(), strict=True)]
    assert _review_scoring()(joined)["accuracy"] >= case["trains"]["min_accuracy"] - 0.1

    # /predict: the file's own rows, quoted fields and all, as JSON objects keyed by the header names.
    header, records = _raw_records(CORPUS / name, report["delimiter"])
    label_at = header.index(case["label_column"])
    objects = [dict(zip(header, record, strict=True)) for record in records if record[label_at].strip()]
    request = json.dumps({"instances": objects})
    answer, content_type = inference.output_fn(
        inference.predict_fn(inference.input_fn(request, "application/json"), served), "application/json"
    )
    predictions = json.loads(answer)["predictions"]
    expected_type = int if case["trains"]["label_type"] == "integer" else str
    assert content_type == "application/json" and all(type(p) is expected_type for p in predictions)
    truth = [expected_type(o[case["label_column"]].strip()) for o in objects]
    accuracy = sum(p == t for p, t in zip(predictions, truth, strict=True)) / len(truth)
    assert accuracy >= case["trains"]["min_accuracy"]


@pytest.mark.parametrize("name", FAILS)
def test_a_messy_csv_that_cannot_train_fails_with_one_clear_sentence(etl, spark, tmp_path, name) -> None:
    case = EXPECTED[name]
    with pytest.raises(etl.DataQualityError) as failure:
        etl.run(spark, _args(CORPUS / name, tmp_path / "prepared", label_column=case["label_column"]))
    assert str(failure.value) == case["fails"].format(uri=CORPUS / name)
    assert _report(tmp_path / "prepared")["error"] == str(failure.value)
    assert not (tmp_path / "prepared" / "train").exists()
