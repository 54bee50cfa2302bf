"""What training, transform and hosting share: ARNs, List* paging and the job record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_runtime.template import ACCOUNT, REGION
from local_runtime.warm_python import WarmProcess, WarmPython

# What SageMaker's containers run in: the libraries of the scikit-learn image that this project's scripts
# use, XGBoost for training on several hosts, and the model server, already imported.
CONTAINER_PYTHON = WarmPython(
    (
        "numpy",
        "scipy.sparse",
        "joblib",
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.impute",
        "sklearn.linear_model",
        "sklearn.metrics",
        "sklearn.pipeline",
        "sklearn.preprocessing",
        "xgboost",
        "local_runtime.model_server",
    )
)


def resource_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def listed(items: list[Any], request: dict[str, Any], name: Callable[[Any], str], created: str = "") -> list[Any]:
    """A List* page: NameContains, then newest first unless SortOrder says otherwise, up to MaxResults."""
    contains = request.get("NameContains", "")
    chosen = [item for item in items if contains in name(item)]
    if request.get("SortBy") == "Name":
        key: Callable[[Any], Any] = name
    else:
        key = (lambda item: item[created]) if created else (lambda item: item.created)
    chosen.sort(key=key, reverse=request.get("SortOrder", "Descending") == "Descending")
    return chosen[: int(request.get("MaxResults", 100))]


@dataclass
class Job:
    kind: str
    request: dict[str, Any]
    status: str = "InProgress"
    secondary: str = "Starting"
    failure: str | None = None
    exit_message: str | None = None
    created: float = field(default_factory=time.time)
    ended: float | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # A training job has one process per host; the other jobs have one.
    processes: list[WarmProcess] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.request[f"{self.kind.title()}JobName"]

    @property
    def arn(self) -> str:
        return resource_arn(f"{self.kind}-job", self.name)
