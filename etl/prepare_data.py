"""Prepare data: validate raw CSV and write SageMaker-ready train/validation/test splits.

Plain PySpark, so the same file runs as an AWS Glue 5.0 job and on local Spark.

Job arguments (Glue style, ``--name value``):
  --raw_input_uri          CSV file or folder; the files have a header row
  --output_uri             where train/, validation/, test/ and data-quality/ are written
  --label_column           name of the target column
  --max_bad_row_fraction   fail when a larger share of rows is malformed (default 0.05)
  --seed                   split seed (default 42)

Output rows are ``label,feature1,...`` with no header, as SageMaker's CSV channels expect. The
data-quality report (row counts, bad rows by reason, split sizes) is written even when the job fails.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

REQUIRED = ("raw_input_uri", "output_uri", "label_column")
OPTIONAL = {"max_bad_row_fraction": "0.05", "seed": "42"}
SPLITS = (("train", 0.70), ("validation", 0.85), ("test", 1.0))
CORRUPT = "_corrupt_record"


class DataQualityError(RuntimeError):
    """The raw data is not fit for training; the message says why."""


def resolved_options(argv: list[str], names: list[str]) -> dict[str, str]:
    """The subset of Glue's getResolvedOptions this job needs, so the script also runs outside Glue."""
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        return getResolvedOptions(argv, names)
    options: dict[str, str] = {}
    for index, arg in enumerate(argv):
        if arg.startswith("--"):
            key, _, inline = arg[2:].partition("=")
            options[key] = inline if inline else (argv[index + 1] if index + 1 < len(argv) else "")
    missing = [name for name in names if name not in options]
    if missing:
        raise SystemExit(f"missing job arguments: {', '.join('--' + m for m in missing)}")
    return {name: options[name] for name in names}


def read_raw(spark: SparkSession, uri: str, label_column: str) -> tuple[DataFrame, list[str]]:
    header = spark.read.option("header", True).csv(uri).columns
    if not header:
        raise DataQualityError(f"no CSV header found at {uri}")
    if label_column not in header:
        raise DataQualityError(f"label column {label_column!r} is missing; the header has {header}")
    features = [c for c in header if c != label_column]
    if not features:
        raise DataQualityError("the data has a label column but no feature columns")
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
    raw = (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .schema(schema)
        .csv(uri)
        .cache()
    )
    return raw, features


def classify_rows(raw: DataFrame, label_column: str, features: list[str]) -> DataFrame:
    """Adds ``bad_reason`` (null for good rows) and casts the features to double."""
    casted = [F.col(f).cast("double").alias(f) for f in features]
    typed = raw.select(
        F.col(label_column).alias("label"), F.col(CORRUPT), *casted, *[F.col(f).alias(f"_raw_{f}") for f in features]
    )
    non_numeric = F.lit(False)
    for f in features:
        non_numeric = non_numeric | (F.col(f).isNull() | F.isnan(F.col(f)))
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit("wrong number of columns"))
        .when(F.col("label").isNull() | (F.trim(F.col("label")) == ""), F.lit("missing label"))
        .when(non_numeric, F.lit("missing or non-numeric feature"))
    )
    return typed.withColumn("bad_reason", reason).withColumn("label", F.trim(F.col("label")))


def split(good: DataFrame, seed: int) -> DataFrame:
    """Deterministic, stratified split: within each label, rows are ranked by a seeded hash."""
    keyed = good.withColumn("_order", F.xxhash64(F.lit(seed), *[F.col(c) for c in good.columns]))
    window = Window.partitionBy("label").orderBy("_order")
    ranked = keyed.withColumn("_rank", F.percent_rank().over(window))
    split_name = (
        F.when(F.col("_rank") < SPLITS[0][1], "train")
        .when(F.col("_rank") < SPLITS[1][1], "validation")
        .otherwise("test")
    )
    return ranked.withColumn("split", split_name).drop("_order", "_rank")


def write_report(spark: SparkSession, output_uri: str, report: dict[str, Any]) -> None:
    spark.createDataFrame([(json.dumps(report, sort_keys=True),)], ["value"]).coalesce(1).write.mode("overwrite").text(
        output_uri.rstrip("/") + "/data-quality"
    )


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    label_column = args["label_column"]
    max_bad = float(args["max_bad_row_fraction"])
    output_uri = args["output_uri"].rstrip("/")
    report: dict[str, Any] = {
        "input": args["raw_input_uri"],
        "label_column": label_column,
        "max_bad_row_fraction": max_bad,
    }
    try:
        raw, features = read_raw(spark, args["raw_input_uri"], label_column)
        rows = classify_rows(raw, label_column, features).cache()
        total = rows.count()
        bad_counts = {
            r["bad_reason"]: r["count"]
            for r in rows.where(F.col("bad_reason").isNotNull()).groupBy("bad_reason").count().collect()
        }
        bad = sum(bad_counts.values())
        report.update(features=features, total_rows=total, bad_rows=bad, bad_rows_by_reason=bad_counts)
        if total == 0:
            raise DataQualityError("the input has a header but no data rows")
        if bad / total > max_bad:
            raise DataQualityError(
                f"{bad} of {total} rows ({bad / total:.1%}) are malformed, more than the allowed {max_bad:.1%}: "
                + ", ".join(f"{count} {reason}" for reason, count in sorted(bad_counts.items()))
            )
        good = rows.where(F.col("bad_reason").isNull()).select("label", *features)
        splits = split(good, int(args["seed"])).cache()
        sizes = {r["split"]: r["count"] for r in splits.groupBy("split").count().collect()}
        report["split_rows"] = {name: sizes.get(name, 0) for name, _ in SPLITS}
        for name, _ in SPLITS:
            (
                splits.where(F.col("split") == name)
                .select("label", *features)
                .coalesce(1)
                .write.mode("overwrite")
                .option("header", False)
                .csv(f"{output_uri}/{name}")
            )
        report["status"] = "succeeded"
        return report
    except DataQualityError as error:
        report.update(status="failed", error=str(error))
        raise
    finally:
        write_report(spark, output_uri, report)


def optional_option(argv: list[str], name: str, default: str) -> str:
    """Glue's getResolvedOptions fails on absent names, so optional arguments are read here."""
    for index, arg in enumerate(argv):
        if arg == f"--{name}" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


def main(argv: list[str]) -> None:
    args = resolved_options(argv, list(REQUIRED))
    args.update({name: optional_option(argv, name, default) for name, default in OPTIONAL.items()})
    spark = (
        SparkSession.builder.appName("prepare-data")
        # SageMaker channels would otherwise download the committer's empty _SUCCESS markers.
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .getOrCreate()
    )
    report = run(spark, args)
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
