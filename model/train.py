"""SageMaker script-mode training for a scikit-learn classifier.

Contract (the same in SageMaker and in the local runtime):
- channels ``SM_CHANNEL_TRAIN`` and ``SM_CHANNEL_VALIDATION`` hold CSV files, label first, no header;
- hyperparameters arrive as ``--name value`` arguments;
- the model goes to ``SM_MODEL_DIR`` (packed into model.tar.gz), with ``evaluation.json`` beside it;
- metrics are printed as ``name=value`` lines that the template's MetricDefinitions match;
- on failure the reason is written to ``$SM_OUTPUT_DIR/failure`` and the process exits non-zero.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

MODELS = ("random_forest", "logistic_regression")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="random_forest")
    parser.add_argument("--n_estimators", type=int, default=100)
    parser.add_argument("--max_depth", type=int, default=0, help="0 means unlimited")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation for logistic_regression")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    )
    args = parser.parse_args(argv)
    if args.n_estimators < 1:
        parser.error(f"n_estimators must be at least 1, got {args.n_estimators}")
    if args.max_depth < 0:
        parser.error(f"max_depth must be 0 (unlimited) or positive, got {args.max_depth}")
    if args.C <= 0:
        parser.error(f"C must be positive, got {args.C}")
    return args


def load_channel(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads every CSV file in a channel: the first column is the label, the rest are features."""
    labels: list[str] = []
    rows: list[list[float]] = []
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.suffix == ".csv")
    if not files:
        raise ValueError(f"no .csv files in channel {directory}")
    for path in files:
        with path.open(newline="") as handle:
            for line_number, record in enumerate(csv.reader(handle), start=1):
                if not record:
                    continue
                try:
                    rows.append([float(value) for value in record[1:]])
                except ValueError:
                    raise ValueError(f"{path.name} line {line_number}: non-numeric feature") from None
                labels.append(record[0])
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"rows in {directory} have different feature counts: {sorted(widths)}")
    return np.asarray(rows, dtype=float), np.asarray(labels)


def build_model(args: argparse.Namespace):
    if args.model == "logistic_regression":
        return LogisticRegression(C=args.C, max_iter=2000, random_state=args.seed)
    return RandomForestClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth or None,
        random_state=args.seed,
        n_jobs=1,
    )


def train(args: argparse.Namespace) -> dict:
    x_train, y_train = load_channel(args.train)
    x_valid, y_valid = load_channel(args.validation)
    if x_train.shape[1] != x_valid.shape[1]:
        raise ValueError(f"train has {x_train.shape[1]} features but validation has {x_valid.shape[1]}")
    model = build_model(args).fit(x_train, y_train)
    predicted = model.predict(x_valid)
    report = {
        "model": args.model,
        "hyperparameters": {
            "n_estimators": args.n_estimators,
            "max_depth": args.max_depth,
            "C": args.C,
            "seed": args.seed,
        },
        "n_features": int(x_train.shape[1]),
        "classes": [str(c) for c in model.classes_],
        "train_rows": len(y_train),
        "validation_rows": len(y_valid),
        "train_accuracy": float(accuracy_score(y_train, model.predict(x_train))),
        "validation_accuracy": float(accuracy_score(y_valid, predicted)),
        "validation_f1_macro": float(f1_score(y_valid, predicted, average="macro")),
    }
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        report = train(args)
    except Exception as error:
        failure = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(error).__name__}: {error}")
        print(f"training failed: {error}", file=sys.stderr)
        return 1
    # The template's MetricDefinitions parse exactly these lines.
    for name in ("train_accuracy", "validation_accuracy", "validation_f1_macro"):
        print(f"{name}={report[name]:.6f}")
    print(f"n_features={report['n_features']} classes={len(report['classes'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
