"""etl/prepare_data.py on local Spark: splits, data-quality accounting and clear failures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from asl import ROOT
from sklearn.datasets import load_iris

SCRIPT = ROOT / "etl" / "prepare_data.py"


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


def test_splits_are_label_first_stratified_and_add_up(etl, spark, tmp_path) -> None:
    bad = ["5.1,3.5,1.4,oops,setosa", "4.9,3.0,1.4,0.2", "6.0,2.2,5.0,1.5,virginica,extra", "5.0,3.4,1.5,0.2,"]
    report = etl.run(spark, _args(iris_csv(tmp_path / "iris.csv", bad), tmp_path / "out"))
    splits = {name: _rows(tmp_path / "out" / name) for name in ("train", "validation", "test")}
    assert sum(len(rows) for rows in splits.values()) == 150
    assert report["total_rows"] == 154 and report["bad_rows"] == 4
    assert report["bad_rows_by_reason"] == {
        "missing or non-numeric feature": 1,
        "wrong number of columns": 2,
        "missing label": 1,
    }
    assert {name: len(rows) for name, rows in splits.items()} == report["split_rows"]
    for rows in splits.values():
        assert {row[0] for row in rows} == {"setosa", "versicolor", "virginica"}
        assert all(len(row) == 5 for row in rows)
        float(rows[0][1])
    assert _report(tmp_path / "out") == report


def test_splits_are_deterministic_for_a_seed(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv")
    etl.run(spark, _args(raw, tmp_path / "a"))
    etl.run(spark, _args(raw, tmp_path / "b"))
    assert _rows(tmp_path / "a" / "test") == _rows(tmp_path / "b" / "test")


def test_too_many_bad_rows_fail_the_job_with_the_counts_and_a_report(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv", ["not,a,number,at,all"] * 20)
    with pytest.raises(
        etl.DataQualityError, match=r"20 of 170 rows \(11.8%\) are malformed, more than the allowed 5.0%"
    ):
        etl.run(spark, _args(raw, tmp_path / "out"))
    report = _report(tmp_path / "out")
    assert report["status"] == "failed" and report["bad_rows"] == 20
    assert not (tmp_path / "out" / "train").exists()


def test_missing_label_column_is_named_in_the_error(etl, spark, tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv")
    with pytest.raises(etl.DataQualityError, match="label column 'species' is missing"):
        etl.run(spark, _args(raw, tmp_path / "out", label_column="species"))


def test_the_script_runs_as_a_job_with_glue_style_arguments(tmp_path) -> None:
    raw = iris_csv(tmp_path / "iris.csv")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--JOB_NAME",
            "prepare",
            "--raw_input_uri",
            str(raw),
            "--output_uri",
            str(out),
            "--label_column",
            "label",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "succeeded"
    assert sum(len(_rows(out / name)) for name in ("train", "validation", "test")) == 150
