"""Prepare data: read the raw CSV files, check them, and write SageMaker-ready train/validation/test splits.

Plain PySpark, so the same file runs as an AWS Glue 5.0 job and on local Spark.

Job arguments (Glue style, ``--name value``):
  --raw_input_uri          CSV file or folder; every file starts with the same header row
  --output_uri             where train/, validation/, test/ and data-quality/ are written
  --label_column           name of the target column (compared after trimming spaces)
  --max_bad_row_fraction   fail when a larger share of rows is malformed (default 0.05)
  --seed                   split seed (default 42)
  --train_shards           files the train split is written in (default 1): the training instance count,
                           so that with ``ShardedByS3Key`` each host gets one file, about 1/N of the rows
  --delimiter              ``,``, ``;``, tab (``\\t`` or ``tab``), ``|``, or ``auto`` (default): the
                           character among those that occurs most often in the header line

What the raw files may hold:
- any header names (dots, spaces, non-ASCII); they are trimmed, and Spark only sees positional names;
- quoted fields (``"Iris, setosa"``, with ``""`` for a quote inside), a UTF-8 BOM, CRLF line endings;
- missing values: an empty cell, or NA, N/A, NaN, null, ? (any case). They stay missing; only a
  missing label makes a row bad;
- numeric columns: a column is numeric when most of its present values are numbers (with a decimal
  comma accepted when the delimiter is not a comma); its other values make their rows bad;
- categorical columns: every other column. Its most frequent 255 values become categories; rarer
  values are treated as missing.

Output rows are numbers only, with no header, as SageMaker's CSV channels and batch transform expect:
``label index, feature1, ...``, where the label index points into the schema's classes, a
categorical feature is the index of its category, and a missing value is ``nan``. No field can
contain a comma or a quote, so any CSV reader (batch transform's filters, the review's scoring)
splits the rows correctly. ``schema/schema.json`` records the columns, their types, the categories and
the label classes; training stores it in the model, and serving uses it to read raw rows. It has its own
prefix, so a sharded train channel holds rows only and every host still reads the whole schema.

The data-quality report (row counts, bad rows by reason, split sizes, the schema) is written even
when the job fails. A failure's message starts with one sentence that says what is wrong and what to do.
"""

from __future__ import annotations

import csv
import difflib
import json
import sys
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

REQUIRED = ("raw_input_uri", "output_uri", "label_column")
OPTIONAL = {"max_bad_row_fraction": "0.05", "seed": "42", "delimiter": "auto", "train_shards": "1"}
SPLITS = (("train", 0.70), ("validation", 0.85), ("test", 1.0))
CORRUPT = "_corrupt_record"
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "\\t": "\t", "tab": "\t", "|": "|", "comma": ",", "semicolon": ";"}
MISSING = ("", "na", "n/a", "nan", "null", "?")
# HistGradientBoosting takes at most 255 categories per feature (its max_bins).
MAX_CATEGORIES = 255
MAX_CLASSES = 1000
SCHEMA_FORMAT = "sfn-mlops/schema-1"


class DataQualityError(RuntimeError):
    """The raw data is not fit for training; the message says why and what to do."""


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


# ---------------------------------------------------------------------------------------------------
# Files and headers, read through Hadoop's file system API (s3:// on Glue, local folders elsewhere)
# ---------------------------------------------------------------------------------------------------


def _fs(spark: SparkSession, uri: str) -> tuple[Any, Any, Any]:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return jvm, path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]


def input_files(spark: SparkSession, uri: str) -> list[str]:
    """The data files under ``uri`` as Spark would read them: hidden (``_``, ``.``) and empty files left out."""
    _, root, fs = _fs(spark, uri)
    if not fs.exists(root):
        raise DataQualityError(f"There is no data at {uri}: upload a CSV file with a header row there.")
    root_text = fs.makeQualified(root).toString().rstrip("/")
    files = []
    listing = fs.listFiles(root, True)
    while listing.hasNext():
        status = listing.next()
        path = status.getPath().toString()
        relative = path[len(root_text) :].strip("/") or path.rsplit("/", 1)[-1]
        if status.getLen() > 0 and not any(part.startswith(("_", ".")) for part in relative.split("/")):
            files.append(path)
    if not files:
        raise DataQualityError(f"There is no data at {uri}: upload a CSV file with a header row there.")
    return sorted(files)


def first_line(spark: SparkSession, file: str) -> str:
    """The header line of one file, decompressed if its name says so, without a UTF-8 byte-order mark."""
    jvm, path, fs = _fs(spark, file)
    stream = fs.open(path)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    ).getCodec(path)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
    try:
        line = reader.readLine()
    finally:
        reader.close()
    return (line or "").lstrip("\ufeff")


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def choose_delimiter(setting: str, header_line: str) -> str:
    setting = setting if setting in ("\t", " ") else setting.strip()
    if setting.lower() != "auto":
        if setting.lower() not in DELIMITERS and setting not in DELIMITERS:
            raise DataQualityError(
                f"The delimiter {setting!r} is not supported: use ',', ';', tab, '|' or 'auto' (detect it)."
            )
        return DELIMITERS.get(setting, DELIMITERS.get(setting.lower(), ","))
    counts = {d: _count_outside_quotes(header_line, d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _name(file: str) -> str:
    return file.rstrip("/").rsplit("/", 1)[-1]


def _listed(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + f", ... ({len(names)} columns)"


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    except ValueError:
        return False
    return True


def read_header(spark: SparkSession, files: list[str], uri: str, delimiter_setting: str) -> tuple[list[str], str]:
    """The trimmed column names and the delimiter, the same for every file, or a clear failure."""
    lines = {file: first_line(spark, file) for file in files}
    delimiter = choose_delimiter(delimiter_setting, lines[files[0]])
    headers: dict[str, list[str]] = {}
    for file, line in lines.items():
        fields = next(csv.reader([line], delimiter=delimiter), []) if line.strip() else []
        headers[file] = [f.strip() or f"column_{i + 1}" for i, f in enumerate(fields)]
    groups: dict[tuple[str, ...], list[str]] = {}
    for file, names in headers.items():
        groups.setdefault(tuple(names), []).append(file)
    if len(groups) > 1:
        shown = [
            f"{_name(fs[0])}{' and others' if len(fs) > 1 else ''} has ({_listed(list(h))})" for h, fs in groups.items()
        ]
        raise DataQualityError(
            f"The files under {uri} have different headers, so they cannot be read as one data set: "
            + "; ".join(shown[:4])
            + ". Keep only files with the same columns under the prefix."
        )
    names = headers[files[0]]
    if not names:
        raise DataQualityError(f"The first line of {_name(files[0])} is empty: start the file with a header row.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataQualityError(
            f"The header of {_name(files[0])} names {', '.join(repr(d) for d in duplicates)} more than once: "
            "give every column a different name."
        )
    return names, delimiter


def check_label(names: list[str], label: str, file: str, delimiter: str) -> None:
    if label in names:
        if len(names) < 2:
            raise DataQualityError(
                f"The header of {_name(file)} has only the label column {label!r}: add at least one feature column."
            )
        return
    if sum(_is_number(n) for n in names) * 2 >= len(names):
        shown = delimiter.join(names)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataQualityError(
            f"The first line of {_name(file)} is data ({shown}), not a header: add a header row that names the "
            f"columns, with the label column called {label!r}."
        )
    close = [n for n in names if n.lower() == label.lower()] or difflib.get_close_matches(label, names, n=1, cutoff=0.6)
    if close:
        raise DataQualityError(
            f"The label column {label!r} is not in the header of {_name(file)}; did you mean {close[0]!r}? Rename "
            f"that column to {label!r}, or set the LabelColumn parameter to {close[0]!r}. The header has: "
            f"{_listed(names)}."
        )
    raise DataQualityError(
        f"The label column {label!r} is not in the header of {_name(file)}: rename the column that holds the labels "
        f"to {label!r}, or set the LabelColumn parameter to its name. The header has: {_listed(names)}."
    )


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------


def _text(column: str) -> Column:
    """A cell trimmed, null when missing."""
    value = F.trim(F.col(column))
    return F.when(value.isNull() | F.lower(value).isin(*MISSING), F.lit(None)).otherwise(value)


def _number(text: Column, delimiter: str) -> Column:
    """The cell as a finite double, or null; a decimal comma is read when the delimiter is not a comma."""
    if delimiter != ",":
        text = F.when(text.rlike(r"^[+-]?[0-9]*,[0-9]+$"), F.regexp_replace(text, ",", ".")).otherwise(text)
    number = text.cast("double")
    return F.when(F.abs(number) < float("inf"), number)


def _python_number(text: str, delimiter: str) -> float:
    if delimiter != "," and text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def _json_number(value: float, integer: bool) -> int | float:
    return int(value) if integer else value


def infer_schema(
    raw: DataFrame, names: list[str], label_index: int, delimiter: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One pass for the column types, one for the categories and classes. Returns (schema, stats)."""
    good = F.col(CORRUPT).isNull()
    aggregates = [F.count(F.lit(1)).alias("rows"), F.sum(F.when(~good, 1).otherwise(0)).alias("corrupt")]
    for i in range(len(names)):
        text = _text(f"c{i}")
        aggregates.append(F.sum(F.when(good & text.isNotNull(), 1).otherwise(0)).alias(f"present{i}"))
        aggregates.append(F.sum(F.when(good & _number(text, delimiter).isNotNull(), 1).otherwise(0)).alias(f"num{i}"))
    counts = raw.agg(*aggregates).first().asDict()  # type: ignore[union-attr]
    counts = {k: v or 0 for k, v in counts.items()}
    present = [counts[f"present{i}"] for i in range(len(names))]
    numbers = [counts[f"num{i}"] for i in range(len(names))]
    numeric = {i for i in range(len(names)) if numbers[i] * 2 > present[i] or not present[i]}
    label_numeric = present[label_index] > 0 and numbers[label_index] == present[label_index]
    categorical = [i for i in range(len(names)) if i not in numeric and i != label_index]

    # Value counts of the categorical columns and the label, the most frequent first, capped per column.
    wanted = [*categorical, label_index]
    pairs = F.explode(F.array(*[F.struct(F.lit(i).alias("k"), _text(f"c{i}").alias("v")) for i in wanted]))
    values = raw.where(good).select(pairs.alias("p")).select("p.k", "p.v").where(F.col("v").isNotNull())
    ranked = values.groupBy("k", "v").count()
    order = Window.partitionBy("k").orderBy(F.desc("count"), F.asc("v"))
    top = ranked.withColumn("r", F.row_number().over(order)).where(F.col("r") <= MAX_CLASSES + 1).collect()
    by_column: dict[int, list[tuple[str, int]]] = {}
    for row in top:
        by_column.setdefault(row["k"], []).append((row["v"], row["count"]))

    label_values = by_column.get(label_index, [])
    label_name = names[label_index]
    if len(label_values) > MAX_CLASSES:
        raise DataQualityError(
            f"The label column {label_name!r} has more than {MAX_CLASSES} different values: this pipeline trains a "
            "classifier, so the label must name a class (a category, or a whole number such as 0/1)."
        )
    if label_numeric:
        parsed = {text: _python_number(text, delimiter) for text, _ in label_values}
        integer = all(n.is_integer() for n in parsed.values())
        classes: list[Any] = sorted({_json_number(n, integer) for n in parsed.values()})
        label_codes = {text: classes.index(_json_number(n, integer)) for text, n in parsed.items()}
        label_type = "integer" if integer else "number"
    else:
        classes = sorted(text for text, _ in label_values)
        label_codes = {text: index for index, text in enumerate(classes)}
        label_type = "string"
    features = []
    for i, name in enumerate(names):
        if i == label_index:
            continue
        if i in numeric:
            features.append({"name": name, "type": "number"})
        else:
            kept = by_column.get(i, [])[:MAX_CATEGORIES]
            features.append({"name": name, "type": "category", "categories": sorted(v for v, _ in kept)})
    schema = {
        "format": SCHEMA_FORMAT,
        "label": {"name": label_name, "type": label_type, "classes": classes},
        "features": features,
        "delimiter": delimiter,
        "missing_values": [m for m in MISSING if m] + ["(empty)"],
    }
    stats = {
        "rows": counts["rows"],
        "corrupt": counts["corrupt"],
        "non_numeric": {names[i]: present[i] - numbers[i] for i in sorted(numeric) if i != label_index},
        "label_codes": label_codes,
    }
    return schema, stats


def encode(
    raw: DataFrame, names: list[str], schema: dict[str, Any], stats: dict[str, Any], delimiter: str, seed: int
) -> DataFrame:
    """The rows as numbers (label index, features), with ``bad_reason`` (null for good rows) and a seeded
    hash of the row's values (``_order``) for the split."""
    label_index = names.index(schema["label"]["name"])
    label_map = F.create_map(*[F.lit(x) for pair in stats["label_codes"].items() for x in pair])
    label_text = _text(f"c{label_index}")
    columns = [label_map[label_text].cast("int").alias("label")]
    hashed = [label_text]  # the label's text and each feature's value: the same order as before schemas
    non_numeric = F.lit(False)
    features = iter(schema["features"])
    for i in range(len(names)):
        if i == label_index:
            continue
        feature = next(features)
        text = _text(f"c{i}")
        if feature["type"] == "number":
            number = _number(text, delimiter)
            non_numeric = non_numeric | (text.isNotNull() & number.isNull())
            columns.append(number.alias(f"f{i}"))
            hashed.append(number)
        else:
            hashed.append(text)
            codes = {category: index for index, category in enumerate(feature["categories"])}
            mapping = F.create_map(*[F.lit(x) for pair in codes.items() for x in pair])
            columns.append(mapping[text].cast("int").alias(f"f{i}"))
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit("wrong number of columns"))
        .when(label_text.isNull(), F.lit("missing label"))
        .when(non_numeric, F.lit("non-numeric value in a numeric column"))
    )
    order = F.xxhash64(F.lit(seed), *hashed)
    return raw.select(*columns, reason.alias("bad_reason"), order.alias("_order"))


EXACT_SPLIT_MAX_ROWS = 100_000


def split(encoded: DataFrame, rows: int) -> DataFrame:
    """Deterministic split by a seeded hash of the row's values.

    Up to EXACT_SPLIT_MAX_ROWS rows it is exactly stratified: within each label, rows are ranked by the
    hash (a sort). Beyond that, each row's hash places it directly (no shuffle, no sort), which splits
    every class in the same proportions up to a fraction of a percent.
    """
    if rows <= EXACT_SPLIT_MAX_ROWS:
        window = Window.partitionBy("label").orderBy("_order")
        position = F.percent_rank().over(window)
    else:
        position = F.pmod(F.col("_order"), F.lit(1 << 30)) / float(1 << 30)
    ranked = encoded.withColumn("_rank", position)
    split_name = (
        F.when(F.col("_rank") < SPLITS[0][1], "train")
        .when(F.col("_rank") < SPLITS[1][1], "validation")
        .otherwise("test")
    )
    return ranked.withColumn("split", split_name).drop("_order", "_rank")


# ---------------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------------


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """One object with a fixed name (Spark's writers name their own part files)."""
    _, path, fs = _fs(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def write_report(spark: SparkSession, output_uri: str, report: dict[str, Any]) -> None:
    spark.createDataFrame([(json.dumps(report, sort_keys=True),)], ["value"]).coalesce(1).write.mode("overwrite").text(
        output_uri.rstrip("/") + "/data-quality"
    )


def _malformed(bad: int, total: int, max_bad: float, by_reason: dict[str, int], examples: dict[str, str]) -> str:
    details = ", ".join(f"{count} with {reason}" for reason, count in sorted(by_reason.items()))
    message = (
        f"{bad} of {total} rows ({bad / total:.1%}) are malformed, more than the allowed {max_bad:.1%}: {details}."
    )
    if examples:
        message += " Non-numeric values in numeric columns: " + ", ".join(f"{c} ({v!r})" for c, v in examples.items())
        message += "."
    return message + " Fix or remove those rows, or raise MaxBadRowFraction."


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    label_column = args["label_column"].strip()
    max_bad = float(args["max_bad_row_fraction"])
    output_uri = args["output_uri"].rstrip("/")
    report: dict[str, Any] = {
        "input": args["raw_input_uri"],
        "label_column": label_column,
        "max_bad_row_fraction": max_bad,
    }
    try:
        files = input_files(spark, args["raw_input_uri"])
        names, delimiter = read_header(spark, files, args["raw_input_uri"], args.get("delimiter", "auto"))
        report.update(files=[_name(f) for f in files], columns=names, delimiter=delimiter)
        check_label(names, label_column, files[0], delimiter)
        positional = StructType(
            [StructField(f"c{i}", StringType()) for i in range(len(names))] + [StructField(CORRUPT, StringType())]
        )
        raw = (
            spark.read.schema(positional)
            .option("header", True)
            .option("sep", delimiter)
            .option("quote", '"')
            .option("escape", '"')
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .csv(files)
        )
        schema, stats = infer_schema(raw, names, names.index(label_column), delimiter)
        report.update(schema=schema, features=[f["name"] for f in schema["features"]])
        total = stats["rows"]
        if total == 0:
            raise DataQualityError(f"{_name(files[0])} has a header but no data rows: add rows below the header.")
        rows = split(encode(raw, names, schema, stats, delimiter, int(args["seed"])), total).cache()
        counted = rows.groupBy("bad_reason", "split").count().collect()
        bad_counts: dict[str, int] = {}
        sizes = {name: 0 for name, _ in SPLITS}
        for row in counted:
            if row["bad_reason"] is None:
                sizes[row["split"]] += row["count"]
            else:
                bad_counts[row["bad_reason"]] = bad_counts.get(row["bad_reason"], 0) + row["count"]
        bad = sum(bad_counts.values())
        report.update(total_rows=total, bad_rows=bad, bad_rows_by_reason=bad_counts)
        if bad / total > max_bad:
            examples = {}
            for column, count in stats["non_numeric"].items():
                if count and len(examples) < 3:
                    i = names.index(column)
                    text = _text(f"c{i}")
                    found = raw.where(text.isNotNull() & _number(text, delimiter).isNull()).select(text).first()
                    if found:
                        examples[column] = found[0]
            raise DataQualityError(_malformed(bad, total, max_bad, bad_counts, examples))
        if len(schema["label"]["classes"]) < 2:
            raise DataQualityError(
                f"The label column {label_column!r} has only one value ({schema['label']['classes'][:1]}): "
                "a classifier needs rows of at least two classes."
            )
        report["split_rows"] = sizes
        features = [c for c in rows.columns if c.startswith("f")]
        good = rows.where(F.col("bad_reason").isNull())
        shards = int(args.get("train_shards", "1"))
        for name, _ in SPLITS:
            chosen = good.where(F.col("split") == name).select("label", *features)
            if name == "train" and shards > 1:
                # A hash of the row's values picks its shard: the same data gives the same shards.
                chosen = chosen.repartition(shards, F.xxhash64("label", *features)).select("label", *features)
            else:
                chosen = chosen.coalesce(1)
            chosen.write.mode("overwrite").option("header", False).option("nullValue", "nan").csv(
                f"{output_uri}/{name}"
            )
        report["train_shards"] = shards
        write_text(spark, f"{output_uri}/schema/schema.json", json.dumps(schema, indent=2, ensure_ascii=False))
        rows.unpersist()
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
    spark = SparkSession.builder.appName("prepare-data").getOrCreate()
    # No empty _SUCCESS markers: SageMaker channels would download them, and a sharded channel would count
    # them as shards. Set on the live Hadoop configuration, which a session that already runs also reads.
    spark.sparkContext._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    report = run(spark, args)
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
