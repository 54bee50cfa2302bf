"""model/evaluate.py as the Processing job runs it: both models on the same rows, or a reason why not."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from asl import ROOT
from handlers import load_model_module
from test_model_code import _channel_with_schema, _run, _write_channel

EVALUATE = ROOT / "model" / "evaluate.py"
SCHEMA = {
    "format": "sfn-mlops/schema-1",
    "label": {"name": "outcome", "type": "string", "classes": ["low", "high"]},
    "features": [{"name": "x", "type": "number"}, {"name": "noise", "type": "number"}],
    "delimiter": ",",
}


def _rows(seed: int, count: int) -> list[list[float]]:
    """Label high exactly when x > 0."""
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(size=count), rng.normal(size=count)
    return [[float(a > 0), float(a), float(b)] for a, b in zip(x, noise, strict=True)]


def _model(root: Path, rows: list[list[float]], schema: dict, *hyperparameters: str) -> Path:
    """Trains on rows and packs the model as SageMaker does: <root>/model.tar.gz."""
    _channel_with_schema(root / "train", rows, schema)
    valid = np.asarray(rows[:20])
    _write_channel(root / "validation", valid[:, 1:], valid[:, 0].astype(int))
    channels = {"train": root / "train", "validation": root / "validation", "schema": root / "schema"}
    result = _run(channels, root / "model", *hyperparameters)
    assert result.returncode == 0, result.stderr
    (root / "artifact").mkdir()
    with tarfile.open(root / "artifact" / "model.tar.gz", "w:gz") as archive:
        for path in (root / "model").iterdir():
            archive.add(path, arcname=path.name)
    return root / "artifact"


def _evaluate(tmp_path: Path, candidate: Path, production: Path | None, test: Path, train: Path, baseline=None):
    args = [sys.executable, str(EVALUATE), "--candidate", str(candidate), "--candidate-name", "new",
            "--test", str(test), "--train", str(train), "--output", str(tmp_path / "out"),
            "--message", str(tmp_path / "message")]  # fmt: skip
    if production is not None:
        args += ["--production", str(production), "--production-name", "old"]
    if baseline is not None:
        args += ["--baseline", str(baseline)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr + (tmp_path / "message").read_text(errors="replace")
    return json.loads((tmp_path / "out" / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluation")
    old_rows, new_rows, test_rows = _rows(1, 300), _rows(2, 300), _rows(3, 80)
    runs = {
        "production": _model(
            root / "old", old_rows, SCHEMA, "--model", "random_forest", "--n_estimators", "1", "--max_depth", "1"
        ),
        "candidate": _model(root / "new", new_rows, SCHEMA),
        "baseline": root / "old" / "train",
        "train": root / "new" / "train",
    }
    _channel_with_schema(root / "test", test_rows + old_rows[:10], SCHEMA)  # 10 rows production trained on
    runs["test"] = root / "test"
    return runs


def test_both_models_are_scored_on_the_same_rows_production_has_not_seen(runs, tmp_path) -> None:
    evaluation = _evaluate(tmp_path, runs["candidate"], runs["production"], runs["test"], runs["train"],
                           runs["baseline"])  # fmt: skip
    assert evaluation["data"]["testRowsSeenByProduction"] == 10
    assert evaluation["testRows"] == 80
    for model in ("candidate", "production"):
        measured = evaluation[model]
        assert measured["rows"] == 80 and sum(map(sum, measured["confusionMatrix"])) == 80
        assert set(measured["perClass"]) == {"low", "high"}
    assert evaluation["candidate"]["accuracy"] > 0.9
    assert set(evaluation["data"]["baseline"]["drift"]) == {"x", "noise"}
    assert evaluation["data"]["baseline"]["drift"]["x"]["statistic"] == "Kolmogorov-Smirnov"
    assert evaluation["schemaChange"] is None  # same columns, same classes
    assert evaluation["candidateSchema"] == {"label": {"name": "outcome", "type": "string", "classes": ["low", "high"]},
                                             "features": SCHEMA["features"]}  # fmt: skip


def test_the_first_model_is_scored_alone(runs, tmp_path) -> None:
    evaluation = _evaluate(tmp_path, runs["candidate"], None, runs["test"], runs["train"])
    assert evaluation["production"] is None and evaluation["testRows"] == 90


def test_a_production_model_trained_on_other_columns_says_why_it_cannot_be_compared(runs, tmp_path) -> None:
    other = {**SCHEMA, "features": [{"name": "y", "type": "number"}, {"name": "noise", "type": "number"}]}
    production = _model(tmp_path / "other", _rows(4, 200), other)
    evaluation = _evaluate(tmp_path, runs["candidate"], production, runs["test"], runs["train"])
    assert evaluation["production"] == {
        "modelName": "old",
        "error": "it needs 1 feature(s) this data does not have (y)",
    }
    assert evaluation["candidate"]["rows"] == 90
    assert evaluation["schemaChange"] == {"featuresAdded": ["x"], "featuresRemoved": ["y"], "featuresRetyped": {},
                                          "newCategories": {}, "classesAdded": [], "classesRemoved": []}  # fmt: skip


def test_schema_change_names_retyped_features_new_categories_and_classes() -> None:
    sys.path.insert(0, str(EVALUATE.parent))
    from evaluate import schema_change

    served = {"label": {"name": "churn", "classes": ["no", "yes"]},
              "features": [{"name": "plan", "type": "category", "categories": ["basic", "pro"]},
                           {"name": "zip", "type": "number"}]}  # fmt: skip
    ours = {"label": {"name": "churned", "classes": ["no", "yes", "unknown"]},
            "features": [{"name": "plan", "type": "category", "categories": ["basic", "pro", "team"]},
                         {"name": "zip", "type": "category", "categories": ["02139"]}]}  # fmt: skip
    assert schema_change(served, ours) == {
        "featuresAdded": [], "featuresRemoved": [],
        "featuresRetyped": {"zip": {"production": "number", "candidate": "category"}},
        "newCategories": {"plan": ["team"]}, "classesAdded": ["unknown"], "classesRemoved": [],
        "labelRenamed": {"production": "churn", "candidate": "churned"},
    }  # fmt: skip
    assert schema_change(served, served) is None


def test_evaluation_installs_only_the_published_requirements_this_python_lacks(tmp_path) -> None:
    evaluate = load_model_module("evaluate")
    assert evaluate.unmet_requirements(ROOT / "model" / "container-requirements.txt") == []
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("xgboost-cpu==0.1\n# a comment\nscikit-learn\nno-such-package-for-sfn-mlops==1.0\n")
    assert evaluate.unmet_requirements(requirements) == ["xgboost-cpu==0.1", "no-such-package-for-sfn-mlops==1.0"]
    assert evaluate.unmet_requirements(tmp_path / "absent.txt") == []
