"""SageMaker script-mode training for a scikit-learn classifier.

Contract (the same in SageMaker and in the local runtime):
- channels ``SM_CHANNEL_TRAIN`` and ``SM_CHANNEL_VALIDATION`` hold CSV files of numbers, label first, no
  header, as etl/prepare_data.py writes them; ``SM_CHANNEL_SCHEMA`` holds the ETL's ``schema.json``
  (without one, every column is a number and the first column holds the label itself);
- the hosts are ``SM_HOSTS`` and this one is ``SM_CURRENT_HOST``; with more than one, ``MASTER_ADDR`` and
  ``MASTER_PORT`` name where the first host listens (default: the first host, port 9099);
- hyperparameters arrive as ``--name value`` arguments;
- the model goes to ``SM_MODEL_DIR`` (packed into model.tar.gz): ``model.joblib``, ``schema.json`` (the
  columns, their types and categories, the label's classes and type) and ``evaluation.json``;
- metrics are printed as ``name=value`` lines that the template's MetricDefinitions match;
- on failure the reason is written to ``$SM_OUTPUT_DIR/failure`` and the process exits non-zero.

Models: ``hist_gradient_boosting`` (the default on one host) takes categorical features and missing
values natively and uses every core through OpenMP; ``random_forest`` and ``logistic_regression`` read the
same data, missing values imputed where the model needs it. These three train on one host.
``xgboost`` (the default on several hosts) trains data-parallel: each host builds histograms of its own
rows, XGBoost's collective sums them across hosts (allreduce), and every host grows the same trees. The
first host serves as the rendezvous and saves the model; the others save nothing. A train channel that is
``FullyReplicated`` is split by rows instead, so no row counts twice.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODELS = ("hist_gradient_boosting", "random_forest", "logistic_regression", "xgboost")
DATA_PARALLEL = ("xgboost",)
SCHEMA_FORMAT = "sfn-mlops/schema-1"
RENDEZVOUS_PORT = 9099
# A host that stops answering fails its peers after this long, rather than leaving them waiting.
COLLECTIVE_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Cluster:
    """The training hosts, as SageMaker names them; the first in order is the rendezvous and saves."""

    hosts: tuple[str, ...]
    current: str
    master_addr: str
    master_port: int

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def is_master(self) -> bool:
        return self.rank == 0


def cluster_from_env(env: Mapping[str, str]) -> Cluster:
    hosts = tuple(sorted(json.loads(env.get("SM_HOSTS", '["algo-1"]')), key=_host_order))
    current = env.get("SM_CURRENT_HOST", hosts[0])
    if current not in hosts:
        raise ValueError(f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {list(hosts)}")
    master_port = int(env.get("MASTER_PORT", RENDEZVOUS_PORT))
    return Cluster(hosts, current, env.get("MASTER_ADDR", hosts[0]), master_port)


def _host_order(host: str) -> tuple[str, int]:
    """algo-2 before algo-10."""
    name, _, number = host.rpartition("-")
    return (name, int(number)) if number.isdigit() else (host, 0)


def _distribution(env: Mapping[str, str], channel: str) -> str:
    config = json.loads(env.get("SM_INPUT_DATA_CONFIG", "{}"))
    return config.get(channel, {}).get("S3DistributionType", "FullyReplicated")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        choices=("auto", *MODELS),
        default="auto",
        help="auto: hist_gradient_boosting on one host, xgboost (data-parallel) on several",
    )
    parser.add_argument(
        "--n_estimators", type=int, default=100, help="trees of the forest, or boosting iterations (at most)"
    )
    parser.add_argument("--max_depth", type=int, default=0, help="0 means unlimited (xgboost: its default, 6)")
    parser.add_argument("--learning_rate", type=float, default=0.1, help="for hist_gradient_boosting")
    parser.add_argument(
        "--min_samples_leaf",
        type=int,
        default=0,
        help="for hist_gradient_boosting; 0 means 20, or one in 20 training rows when there are fewer than 400",
    )
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation for logistic_regression")
    parser.add_argument("--n_jobs", type=int, default=-1, help="cores for random_forest; -1 means all")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    )
    parser.add_argument("--schema", default=os.environ.get("SM_CHANNEL_SCHEMA", "/opt/ml/input/data/schema"))
    args = parser.parse_args(argv)
    if args.n_estimators < 1:
        parser.error(f"n_estimators must be at least 1, got {args.n_estimators}")
    if args.max_depth < 0:
        parser.error(f"max_depth must be 0 (unlimited) or positive, got {args.max_depth}")
    if args.C <= 0:
        parser.error(f"C must be positive, got {args.C}")
    if args.min_samples_leaf < 0:
        parser.error(f"min_samples_leaf must be 0 (automatic) or positive, got {args.min_samples_leaf}")
    if not 0 < args.learning_rate <= 1:
        parser.error(f"learning_rate must be in (0, 1], got {args.learning_rate}")
    return args


def load_channel(directory: str, may_be_empty: bool = False) -> np.ndarray | None:
    """Every CSV file in a channel as one float array, label first; ``nan`` (or an empty cell) is missing.

    A host's share of a sharded channel may be empty (more hosts than files): then None, if allowed.
    """
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.suffix == ".csv")
    if not files and not may_be_empty:
        raise ValueError(f"no .csv files in channel {directory}")
    blocks = []
    for path in files:
        if path.stat().st_size == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" for an empty split file
            try:
                block = np.loadtxt(path, delimiter=",", dtype=float, ndmin=2)
            except ValueError as error:
                raise ValueError(f"{path.name}: {error}; the channel must hold numbers only") from None
        if block.size:
            blocks.append(block)
    if not blocks:
        if may_be_empty:
            return None
        raise ValueError(f"the channel {directory} has no rows")
    widths = {block.shape[1] for block in blocks}
    if len(widths) != 1:
        raise ValueError(f"rows in {directory} have different column counts: {sorted(widths)}")
    data = np.vstack(blocks)
    # Spark writes a split's files in no fixed order; sorted rows make the same data train the same model.
    return data[np.lexsort(data.T[::-1])]


def load_schema(schema_dir: str, train: np.ndarray) -> dict[str, Any]:
    """The ETL's schema, or one that reads every column as a number, label values as they are."""
    found = sorted(Path(schema_dir).rglob("schema.json"))
    if found:
        schema = json.loads(found[0].read_text())
        if schema.get("format") != SCHEMA_FORMAT:
            raise ValueError(f"{found[0].name} is not a {SCHEMA_FORMAT} schema")
        return schema
    values = np.unique(train[:, 0])
    integer = bool(np.all(values == np.round(values)))
    classes = [int(v) if integer else float(v) for v in values]
    return {
        "format": SCHEMA_FORMAT,
        "label": {"name": "label", "type": "integer" if integer else "number", "classes": classes, "encoded": False},
        "features": [{"name": f"feature_{i + 1}", "type": "number"} for i in range(train.shape[1] - 1)],
    }


def split_label(data: np.ndarray, schema: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Features and label indices into the schema's classes."""
    labels = data[:, 0]
    if schema["label"].get("encoded", True):
        indices = labels.astype(int)
    else:  # a label column holding the class values themselves
        classes = np.asarray(schema["label"]["classes"], dtype=float)
        indices = np.searchsorted(classes, labels)
        unknown = (indices >= len(classes)) | (classes[np.minimum(indices, len(classes) - 1)] != labels)
        if unknown.any():
            raise ValueError(f"label {labels[unknown][0]!r} is not one of the training classes")
    return data[:, 1:], indices


def build_model(args: argparse.Namespace, schema: dict[str, Any], rows: int):
    categorical = np.array([f["type"] == "category" for f in schema["features"]])
    if args.model == "logistic_regression":
        numeric = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
        encoder = OneHotEncoder(handle_unknown="ignore")
        columns = ColumnTransformer(
            [("numbers", numeric, np.flatnonzero(~categorical)), ("categories", encoder, np.flatnonzero(categorical))]
        )
        return make_pipeline(columns, LogisticRegression(C=args.C, max_iter=2000, random_state=args.seed))
    if args.model == "random_forest":
        # Categories are ordinal codes to a forest; missing values go to the better side of each split.
        return RandomForestClassifier(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth or None,
            random_state=args.seed,
            n_jobs=args.n_jobs,
        )
    # scikit-learn's default leaf of 20 rows leaves a few dozen rows (half of iris) almost no splits.
    leaf = args.min_samples_leaf or min(20, max(1, rows // 20))
    return HistGradientBoostingClassifier(
        max_iter=args.n_estimators,
        min_samples_leaf=leaf,
        learning_rate=args.learning_rate,
        max_depth=args.max_depth or None,
        categorical_features=categorical if categorical.any() else None,
        random_state=args.seed,
    )


def fit_xgboost(
    args: argparse.Namespace, schema: dict[str, Any], x: np.ndarray, y: np.ndarray, cluster: Cluster
) -> tuple[Any, int, int]:
    """XGBoost on this host's rows, data-parallel across the cluster; the model and the whole training set's
    correct predictions and row count (summed across hosts)."""
    import xgboost
    from xgboost import collective
    from xgboost.tracker import RabitTracker

    params = {
        "objective": "multi:softprob",
        "num_class": len(schema["label"]["classes"]),
        "tree_method": "hist",
        "eta": args.learning_rate,
        "max_depth": args.max_depth or 6,
        "seed": args.seed,
        "nthread": int(os.environ.get("SM_NUM_CPUS", os.cpu_count() or 1)),
        "max_cat_to_onehot": 1,
    }
    feature_types = ["c" if f["type"] == "category" else "q" for f in schema["features"]]

    def fit() -> tuple[Any, np.ndarray]:
        rows = xgboost.DMatrix(x, label=y, feature_types=feature_types, enable_categorical=True)
        booster = xgboost.train(params, rows, num_boost_round=args.n_estimators)
        correct = int((booster.predict(rows).argmax(axis=1) == y).sum()) if len(y) else 0
        return booster, np.array([correct, len(y)], dtype=np.float64)

    if cluster.size == 1:
        booster, counts = fit()
    else:
        address = socket.gethostbyname(cluster.master_addr)
        tracker = None
        if cluster.is_master:
            tracker = RabitTracker(n_workers=cluster.size, host_ip=address, port=cluster.master_port, sortby="task")
            tracker.start()
        with collective.CommunicatorContext(
            dmlc_tracker_uri=address,
            dmlc_tracker_port=cluster.master_port,
            dmlc_task_id=f"{cluster.rank:04d}",  # sortby="task": ranks follow the sorted host names
            dmlc_timeout=COLLECTIVE_TIMEOUT_SECONDS,
        ):
            booster, counts = fit()
            counts = collective.allreduce(counts, collective.Op.SUM)
        if tracker is not None:
            tracker.wait_for(COLLECTIVE_TIMEOUT_SECONDS)
    # The scikit-learn interface, so serving and evaluation predict with it as with the other models.
    classifier = xgboost.XGBClassifier()
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "booster.json"
        booster.save_model(saved)
        classifier.load_model(saved)
    return classifier, int(counts[0]), int(counts[1])


def chosen_model(requested: str, cluster: Cluster) -> str:
    model = requested if requested != "auto" else ("xgboost" if cluster.size > 1 else "hist_gradient_boosting")
    if cluster.size > 1 and model not in DATA_PARALLEL:
        raise ValueError(
            f"{model} trains on one host, and this job has {cluster.size}: use model=xgboost (data-parallel) "
            "or TrainingInstanceCount 1"
        )
    return model


def train(args: argparse.Namespace, cluster: Cluster, env: Mapping[str, str] = os.environ) -> dict:
    model_name = chosen_model(args.model, cluster)
    valid_data = load_channel(args.validation)
    assert valid_data is not None
    sharded = _distribution(env, "train") == "ShardedByS3Key"
    train_data = load_channel(args.train, may_be_empty=sharded and cluster.size > 1)
    if train_data is None:
        train_data = np.empty((0, valid_data.shape[1]))
    elif cluster.size > 1 and not sharded:
        train_data = train_data[cluster.rank :: cluster.size]  # every host holds all rows: each takes its part
    if cluster.size > 1 and not sorted(Path(args.schema).rglob("schema.json")):
        raise ValueError(f"training on {cluster.size} hosts needs the ETL's schema.json in {args.schema}")
    schema = load_schema(args.schema, train_data)
    if train_data.shape[1] != valid_data.shape[1]:
        raise ValueError(f"train has {train_data.shape[1]} columns but validation has {valid_data.shape[1]}")
    if train_data.shape[1] != len(schema["features"]) + 1:
        raise ValueError(
            f"the schema names {len(schema['features'])} features but the rows have {train_data.shape[1] - 1}"
        )
    x_train, y_train = split_label(train_data, schema)
    x_valid, y_valid = split_label(valid_data, schema)
    if model_name == "xgboost":
        model, train_correct, train_rows = fit_xgboost(args, schema, x_train, y_train, cluster)
    else:
        model = build_model(args, schema, len(y_train)).fit(x_train, y_train)
        train_correct, train_rows = int((model.predict(x_train) == y_train).sum()), len(y_train)
    predicted = model.predict(x_valid)
    categorical = sum(f["type"] == "category" for f in schema["features"])
    report = {
        "model": model_name,
        "hosts": cluster.size,
        "hyperparameters": {
            "n_estimators": args.n_estimators,
            "max_depth": args.max_depth,
            "learning_rate": args.learning_rate,
            "min_samples_leaf": args.min_samples_leaf,
            "C": args.C,
            "n_jobs": args.n_jobs,
            "seed": args.seed,
        },
        "n_features": int(x_train.shape[1]),
        "n_categorical_features": int(categorical),
        "classes": schema["label"]["classes"],
        "label_type": schema["label"]["type"],
        "train_rows": train_rows,
        "host_train_rows": len(y_train),
        "validation_rows": len(y_valid),
        "train_accuracy": train_correct / train_rows if train_rows else 0.0,
        "validation_accuracy": float(accuracy_score(y_valid, predicted)),
        "validation_f1_macro": float(f1_score(y_valid, predicted, average="macro")),
    }
    if not cluster.is_master:
        return report  # SageMaker packs every host's model folder; one copy of the model is enough
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    served = {**schema, "label": {k: v for k, v in schema["label"].items() if k != "encoded"}}
    (model_dir / "schema.json").write_text(json.dumps(served, indent=2, ensure_ascii=False))
    (model_dir / "evaluation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cluster = cluster_from_env(os.environ)
        report = train(args, cluster)
    except Exception as error:
        failure = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(error).__name__}: {error}")
        print(f"training failed: {error}", file=sys.stderr)
        return 1
    if not cluster.is_master:
        print(f"host trained on {report['host_train_rows']} of {report['train_rows']} training rows")
        return 0
    # The template's MetricDefinitions parse exactly these lines, which only the first host prints.
    for name in ("train_accuracy", "validation_accuracy", "validation_f1_macro"):
        print(f"{name}={report[name]:.6f}")
    print(
        f"n_features={report['n_features']} categorical={report['n_categorical_features']} "
        f"classes={len(report['classes'])} train_rows={report['train_rows']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
