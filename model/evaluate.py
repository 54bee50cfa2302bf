"""SageMaker Processing: the candidate and the production model scored on the same held-out test split.

Contract (the same in SageMaker and in the local runtime): each input is a folder under
``/opt/ml/processing/input`` named by an argument; ``--candidate`` and ``--production`` hold a
``model.tar.gz`` each, ``--test`` and ``--train`` this run's prepared splits, ``--baseline`` the split the
production model was trained on. The result is ``evaluation.json`` in ``--output``. A failure reason goes
to ``/opt/ml/output/message`` (``--message``) and the process exits non-zero.

When a production model is compared, test rows it was trained on (found in ``--baseline``) are left out
for both models, so neither is scored on rows it has seen. Both models are asked for predictions the way
/predict asks: rows keyed by feature name, decoded from the
prepared split with this run's schema. So a production model trained on other columns, categories or
classes is scored on this data as far as it can be, and one that cannot score it at all says why instead
of being compared.

The processing container runs this script directly, so nothing installs the code's ``requirements.txt``
as the training and serving toolkits do; ``install_requirements`` does, for what this Python lacks
(xgboost, to load a model trained on several hosts).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference  # the serving code published beside this file

FORMAT = "sfn-mlops/evaluation-1"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


def unmet_requirements(requirements: Path) -> list[str]:
    """The pinned ``name==version`` lines of a requirements file that this Python does not have."""
    unmet = []
    for line in requirements.read_text().splitlines() if requirements.exists() else []:
        wanted = line.split("#", 1)[0].strip()
        if not wanted:
            continue
        name, _, version = wanted.partition("==")
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or (version and installed != version.strip()):
            unmet.append(wanted)
    return unmet


def install_requirements(requirements: Path = REQUIREMENTS) -> None:
    unmet = unmet_requirements(requirements)
    if unmet:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *unmet], check=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--candidate-name", required=True)
    parser.add_argument("--production", default="")
    parser.add_argument("--production-name", default="")
    parser.add_argument("--test", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--baseline", default="")
    parser.add_argument("--output", required=True)
    parser.add_argument("--message", default="/opt/ml/output/message")
    return parser.parse_args(argv)


def load_model(folder: str, scratch: Path) -> dict[str, Any]:
    """inference.model_fn on the model.tar.gz the input folder holds."""
    (archive,) = sorted(Path(folder).rglob("model.tar.gz")) or [None]
    if archive is None:
        raise FileNotFoundError(f"no model.tar.gz under {folder}")
    target = scratch / Path(folder).name
    with tarfile.open(archive) as tar:
        # The "data" filter refuses links and paths outside the target; older Pythons lack it.
        tar.extractall(target, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # noqa: S202
    return inference.model_fn(str(target))


def read_split(folder: str) -> np.ndarray:
    """The prepared rows of a split: label index first, then the encoded features."""
    files = sorted(p for p in Path(folder).rglob("*.csv") if p.is_file())
    blocks = [np.loadtxt(p, delimiter=",", ndmin=2) for p in files if p.stat().st_size]
    if not blocks:
        raise ValueError(f"no rows in {folder}")
    return np.vstack(blocks)


def decoded(rows: np.ndarray, schema: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Labels as class names and features keyed by name, as the CSV held them."""
    classes = schema["label"]["classes"]
    labels = [str(classes[int(i)]) for i in rows[:, 0]]
    instances = []
    for row in rows[:, 1:]:
        instance: dict[str, Any] = {}
        for feature, value in zip(schema["features"], row, strict=True):
            if math.isnan(value):
                instance[feature["name"]] = None
            elif feature["type"] == "category":
                instance[feature["name"]] = feature["categories"][int(value)]
            else:
                instance[feature["name"]] = float(value)
        instances.append(instance)
    return labels, instances


def predictions(served: dict[str, Any], instances: list[dict[str, Any]]) -> list[str]:
    known = {f["name"] for f in served["schema"]["features"]}
    rows = [{k: v for k, v in instance.items() if k in known} for instance in instances]
    answer = inference.predict_fn({"format": "raw", "rows": rows}, served)
    return [str(label) for label in answer["labels"]]


def metrics(name: str, truth: list[str], predicted: list[str], classes: list[str]) -> dict[str, Any]:
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    return {
        "modelName": name,
        "rows": len(truth),
        "accuracy": round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 6),
        "perClass": {
            c: {
                "precision": round(float(p), 6),
                "recall": round(float(r), 6),
                "f1": round(float(f), 6),
                "support": int(s),
            }
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusionMatrix": confusion_matrix(truth, predicted, labels=classes).tolist(),
    }


def cannot_score(served: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why the production model cannot score this data at all, or None when it can."""
    ours = {f["name"] for f in schema["features"]}
    missing = [f["name"] for f in served["schema"]["features"] if f["name"] not in ours]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        return f"it needs {len(missing)} feature(s) this data does not have ({shown})"
    if not set(map(str, served["schema"]["label"]["classes"])) & set(map(str, schema["label"]["classes"])):
        return "it predicts none of this data's classes"
    return None


def schema_change(served: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """How the candidate's schema differs from production's, or None when they agree: features added or
    removed, features whose type changed, new categories, and label classes gained or lost."""
    before = {f["name"]: f for f in served["features"]}
    after = {f["name"]: f for f in schema["features"]}
    retyped = {
        name: {"production": before[name]["type"], "candidate": after[name]["type"]}
        for name in sorted(before.keys() & after.keys())
        if before[name]["type"] != after[name]["type"]
    }
    new_categories = {
        name: sorted(
            set(map(str, after[name].get("categories") or [])) - set(map(str, before[name].get("categories") or []))
        )
        for name in sorted(before.keys() & after.keys())
        if after[name]["type"] == "category" and before[name]["type"] == "category"
    }
    old_classes = set(map(str, served["label"]["classes"]))
    new_classes = set(map(str, schema["label"]["classes"]))
    change = {
        "featuresAdded": [name for name in after if name not in before],
        "featuresRemoved": [name for name in before if name not in after],
        "featuresRetyped": retyped,
        "newCategories": {name: found for name, found in new_categories.items() if found},
        "classesAdded": sorted(new_classes - old_classes),
        "classesRemoved": sorted(old_classes - new_classes),
    }
    if served["label"].get("name") != schema["label"].get("name"):
        change["labelRenamed"] = {"production": served["label"].get("name"), "candidate": schema["label"].get("name")}
    return change if any(change.values()) else None


def kept_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """What the registry keeps of the candidate's schema: the label, its classes, and each feature's name,
    type and categories."""
    features = [
        {"name": f["name"], "type": f["type"], **({"categories": f["categories"]} if f.get("categories") else {})}
        for f in schema["features"]
    ]
    label = {key: schema["label"].get(key) for key in ("name", "type", "classes")}
    return {"label": label, "features": features}


def balance(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {label: round(count / len(labels), 6) for label, count in sorted(counts.items())}


def drift(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], schema: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per feature both data sets have: the Kolmogorov-Smirnov statistic for numbers, the total variation
    distance of the category shares for categories; 0 is the same distribution, 1 none in common."""
    found = {}
    shared = [f for f in schema["features"] if theirs and f["name"] in theirs[0]]
    for feature in shared:
        name = feature["name"]
        a = [row[name] for row in ours if row[name] is not None]
        b = [row[name] for row in theirs if row[name] is not None]
        if not a or not b:
            continue
        if feature["type"] == "category":
            pa, pb = Counter(a), Counter(b)
            value = 0.5 * sum(abs(pa[c] / len(a) - pb[c] / len(b)) for c in set(pa) | set(pb))
            found[name] = {"statistic": "total variation", "value": round(value, 6)}
        else:
            found[name] = {"statistic": "Kolmogorov-Smirnov", "value": round(float(ks_2samp(a, b).statistic), 6)}
    return found


def row_key(label: str, instance: dict[str, Any]) -> tuple[Any, ...]:
    return (label, *sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in instance.items()))


def evaluate(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    candidate = load_model(args.candidate, scratch)
    schema = candidate["schema"]
    truth, instances = decoded(read_split(args.test), schema)
    classes = [str(c) for c in schema["label"]["classes"]]
    train_labels, train_instances = decoded(read_split(args.train), schema)
    data: dict[str, Any] = {"trainRows": len(train_labels), "testRows": len(truth),
                            "classBalance": balance(train_labels), "baseline": None}  # fmt: skip
    production, reason = None, None
    if args.production:
        try:
            production = load_model(args.production, scratch)
            reason = cannot_score(production, schema)
        except (OSError, ValueError, KeyError) as error:
            reason = f"it cannot be loaded by this code version ({type(error).__name__}: {error})"
    change = schema_change(production["schema"], schema) if production is not None else None
    if production is not None and reason is None and args.baseline:
        baseline_labels, baseline_instances = decoded(read_split(args.baseline), production["schema"])
        data["baseline"] = {
            "modelName": args.production_name,
            "trainRows": len(baseline_labels),
            "classBalance": balance(baseline_labels),
            "drift": drift(train_instances, baseline_instances, schema),
        }
        # Rows production was trained on would flatter it: both models are scored on the rest.
        seen = {row_key(label, row) for label, row in zip(baseline_labels, baseline_instances, strict=True)}
        unseen = [i for i, row in enumerate(instances) if row_key(truth[i], row) not in seen]
        data["testRowsSeenByProduction"] = len(truth) - len(unseen)
        if unseen:
            truth, instances = [truth[i] for i in unseen], [instances[i] for i in unseen]
        else:
            reason = "it was trained on every row of this run's test split"
    result: dict[str, Any] = {
        "format": FORMAT,
        "testRows": len(truth),
        "classes": classes,
        "candidate": metrics(args.candidate_name, truth, predictions(candidate, instances), classes),
        "production": None,
        "data": data,
        "schemaChange": change,
        "candidateSchema": kept_schema(schema),
    }
    if args.production and reason:
        result["production"] = {"modelName": args.production_name, "error": reason}
    elif production is not None:
        result["production"] = metrics(args.production_name, truth, predictions(production, instances), classes)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        install_requirements()
        with tempfile.TemporaryDirectory() as scratch:
            result = evaluate(args, Path(scratch))
    except Exception as error:
        message = f"Evaluation failed: {type(error).__name__}: {error}"
        try:
            Path(args.message).parent.mkdir(parents=True, exist_ok=True)
            Path(args.message).write_text(message)
        except OSError:
            pass
        print(message, file=sys.stderr)
        return 1
    Path(args.output).mkdir(parents=True, exist_ok=True)
    (Path(args.output) / "evaluation.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    line = f"candidate_accuracy={result['candidate']['accuracy']}"
    production = result["production"] or {}
    if "accuracy" in production:
        line += f" production_accuracy={production['accuracy']}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
