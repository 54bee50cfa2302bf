"""Turns a run's execution input plus the stack's defaults into one normalised run config.

Everything the state machine needs later (names, S3 locations, thresholds, SageMaker request
fragments) is decided here, once, so the ASL only copies values around.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

TRIGGERS = ("manual", "schedule", "new-data")
ALLOWED_FIELDS = frozenset(
    {
        "trigger",
        "bucket",
        "key",
        "etag",
        "rawDataUri",
        "dataVersion",
        "accuracyThreshold",
        "minImprovement",
        "maxClassRegression",
        "approvalTimeoutSeconds",
        "hyperparameters",
    }
)
# Longest prefix that still leaves room for "-" and a 36-character UUID in a 63-character job name.
JOB_PREFIX_MAX = 26
HYPERPARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
HYPERPARAMETER_VALUE_MAX = 2500
# train.py's models that train on a single host; on more, only a data-parallel model (xgboost) makes sense.
SINGLE_HOST_MODELS = ("hist_gradient_boosting", "random_forest", "logistic_regression")
DEPLOY_BUDGET_SECONDS = 5400
LOCK_MARGIN = timedelta(hours=6)


class InvalidInput(Exception):
    """Raised for input the pipeline cannot run with; its name is the Error the ASL reports."""

    def __init__(self, field: str, problem: str) -> None:
        field = _shortened(field)
        super().__init__(f"{field}: {problem}")
        self.field = field


def _shortened(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _quoted(value: Any) -> str:
    """A bad value as the error shows it: short, so the Cause and the notification stay readable and small."""
    return _shortened(repr(value))


def _number(source: dict[str, Any], field: str, low: float, high: float, *, integer: bool = False) -> float | int:
    value = source[field]
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be a number, got {_quoted(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(field, f"must be a number, got {_quoted(value)}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(field, f"must be between {low:g} and {high:g}, got {_quoted(value)}")
    if integer:
        if number != int(number):
            raise InvalidInput(field, f"must be a whole number, got {_quoted(value)}")
        return int(number)
    return number


def _string(source: dict[str, Any], field: str) -> str:
    value = source.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "must be a non-empty string")
    return value


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "run"


def _data_source(run_input: dict[str, Any], defaults: dict[str, str], execution_name: str) -> tuple[str, str]:
    """Returns (raw data URI, data version) for the trigger."""
    bucket = defaults["dataBucket"]
    prefix = defaults["rawDataPrefix"]
    trigger = run_input["trigger"]
    if trigger == "new-data":
        event_bucket = _string(run_input, "bucket")
        key = _string(run_input, "key")
        etag = _string(run_input, "etag")
        if event_bucket != bucket:
            raise InvalidInput("bucket", f"must be the stack's data bucket {bucket!r}, got {_quoted(event_bucket)}")
        if not key.startswith(prefix) or not key.lower().endswith(".csv"):
            raise InvalidInput("key", f"must be a .csv object under {prefix!r}, got {_quoted(key)}")
        return f"s3://{bucket}/{key}", f"s3://{bucket}/{key}@{etag}"
    raw_uri = run_input.get("rawDataUri", f"s3://{bucket}/{prefix}")
    if not isinstance(raw_uri, str) or not raw_uri.startswith(f"s3://{bucket}/"):
        raise InvalidInput("rawDataUri", f"must be an s3:// URI in the data bucket {bucket!r}, got {_quoted(raw_uri)}")
    version = run_input.get("dataVersion", f"{trigger}/{execution_name}")
    if not isinstance(version, str) or not version.strip() or len(version) > 1024:
        raise InvalidInput("dataVersion", "must be a non-empty string of at most 1024 characters")
    return raw_uri, version


def _hyperparameters(run_input: dict[str, Any], model_code_uri: str) -> dict[str, str]:
    given = run_input.get("hyperparameters", {})
    if not isinstance(given, dict):
        raise InvalidInput("hyperparameters", "must be an object of name: value pairs")
    chosen: dict[str, str] = {"seed": "42"}
    for name, value in given.items():
        field = f"hyperparameters.{name}"
        if not HYPERPARAMETER_NAME.match(name) or name.startswith("sagemaker_"):
            raise InvalidInput(field, "is not an allowed hyperparameter name")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidInput(field, f"must be a string or a number, got {_quoted(value)}")
        if len(str(value)) > HYPERPARAMETER_VALUE_MAX:
            raise InvalidInput(field, f"must be at most {HYPERPARAMETER_VALUE_MAX} characters (SageMaker's limit)")
        chosen[name] = str(value)
    # The framework container reads these two to find and run the training script.
    chosen["sagemaker_program"] = "train.py"
    chosen["sagemaker_submit_directory"] = model_code_uri
    return chosen


def _production_variants(defaults: dict[str, str], model_name: str) -> list[dict[str, Any]]:
    if defaults["endpointType"] == "Serverless":
        return [
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "ServerlessConfig": {
                    "MemorySizeInMB": _number(defaults, "serverlessMemorySizeMB", 1024, 6144, integer=True),
                    "MaxConcurrency": _number(defaults, "serverlessMaxConcurrency", 1, 200, integer=True),
                },
            }
        ]
    return [
        {
            "VariantName": "AllTraffic",
            "ModelName": model_name,
            "InstanceType": defaults["endpointInstanceType"],
            "InitialInstanceCount": _number(defaults, "endpointInstanceCount", 1, 10, integer=True),
            "InitialVariantWeight": 1.0,
        }
    ]


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_run_config(run_input: Any, execution: dict[str, str], defaults: dict[str, str]) -> dict[str, Any]:
    """Validates the execution input and returns the run config; raises InvalidInput naming the bad field."""
    if not isinstance(run_input, dict):
        raise InvalidInput("input", f"must be a JSON object, got {type(run_input).__name__}")
    unknown = sorted(set(run_input) - ALLOWED_FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], f"is not a known field (allowed: {', '.join(sorted(ALLOWED_FIELDS))})")
    run_input = {"trigger": "manual", **run_input}
    if run_input["trigger"] not in TRIGGERS:
        raise InvalidInput("trigger", f"must be one of {', '.join(TRIGGERS)}, got {_quoted(run_input['trigger'])}")

    settings = {
        **defaults,
        **{
            k: run_input[k]
            for k in ("accuracyThreshold", "minImprovement", "maxClassRegression", "approvalTimeoutSeconds")
            if k in run_input
        },
    }
    accuracy_threshold = _number(settings, "accuracyThreshold", 0, 1)
    min_improvement = _number(settings, "minImprovement", 0, 1)
    max_class_regression = _number(settings, "maxClassRegression", 0, 1)
    approval_timeout = _number(settings, "approvalTimeoutSeconds", 1, 31_536_000, integer=True)
    poll_seconds = _number(defaults, "statusPollSeconds", 1, 300, integer=True)
    max_runtime = _number(defaults, "trainingMaxRuntimeSeconds", 60, 432_000, integer=True)
    instances = _number(defaults, "trainingInstanceCount", 1, 8, integer=True)
    spot = defaults["useSpotTraining"] == "true"

    hyperparameters = _hyperparameters(run_input, defaults["modelCodeUri"])
    if instances > 1 and hyperparameters.get("model") in SINGLE_HOST_MODELS:
        raise InvalidInput(
            "hyperparameters.model",
            f"{hyperparameters['model']} trains on one host, and TrainingInstanceCount is {instances}: "
            "use xgboost (data-parallel) or leave model out",
        )

    execution_name = execution["name"]
    raw_data_uri, data_version = _data_source(run_input, defaults, execution_name)
    digest = hashlib.sha256(execution["arn"].encode()).hexdigest()[:8]
    # 32 characters keep "<prefix>-<run id>-scoring" within SageMaker's 63-character model names.
    run_id = f"{_slug(execution_name)[:32].strip('-')}-{digest}"
    name_prefix = defaults["namePrefix"]
    model_name = f"{name_prefix}-{run_id}"
    artifacts = f"s3://{defaults['artifactsBucket']}/runs/{run_id}"

    stopping: dict[str, int] = {"MaxRuntimeInSeconds": max_runtime}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = 2 * max_runtime
    # With a customer-managed key, every volume and output SageMaker writes is encrypted with it; the state
    # machine's role refuses jobs that leave it out. Without one, AWS-managed keys apply.
    kms_key = defaults["kmsKeyArn"]
    output_key = {"KmsKeyId": kms_key} if kms_key else {}
    volume_key = {"VolumeKmsKeyId": kms_key} if kms_key else {}
    started = _parse_time(execution["startTime"])
    lock_seconds = approval_timeout + stopping.get("MaxWaitTimeInSeconds", max_runtime) + DEPLOY_BUDGET_SECONDS
    lock_expires = started + timedelta(seconds=lock_seconds) + LOCK_MARGIN

    return {
        "runId": run_id,
        "trigger": run_input["trigger"],
        "rawDataUri": raw_data_uri,
        "dataVersion": data_version,
        # The exact model code this run trains, serves and evaluates with (its key carries the code's hash).
        "modelCode": defaults["modelCodeUri"],
        "labelColumn": defaults["labelColumn"],
        "maxBadRowFraction": str(_number(defaults, "maxBadRowFraction", 0, 1)),
        "csvDelimiter": defaults["csvDelimiter"],
        "preparedDataUri": f"{artifacts}/data/",
        "namePrefix": f"{name_prefix}-{_slug(execution_name)}"[:JOB_PREFIX_MAX].rstrip("-"),
        "modelName": model_name,
        "scoringModelName": f"{model_name}-scoring",
        "endpointConfigName": model_name,
        "accuracyThreshold": accuracy_threshold,
        "minImprovement": min_improvement,
        "maxClassRegression": max_class_regression,
        "approvalTimeoutSeconds": approval_timeout,
        "statusPollSeconds": poll_seconds,
        "maxStatusChecks": max(3, math.ceil(DEPLOY_BUDGET_SECONDS / poll_seconds)),
        "lockExpiresAt": lock_expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "hyperparameters": hyperparameters,
        # One train file per training host, so ShardedByS3Key hands each host its own rows.
        "trainShards": str(instances),
        "training": {
            "resourceConfig": {
                "InstanceType": defaults["trainingInstanceType"],
                "InstanceCount": instances,
                "VolumeSizeInGB": 10,
                **volume_key,
            },
            "outputDataConfig": {"S3OutputPath": f"{artifacts}/model/", **output_key},
            "stoppingCondition": stopping,
            "enableManagedSpotTraining": spot,
        },
        "evaluationUri": f"{artifacts}/evaluation/",
        "evaluation": {
            "outputConfig": {
                "Outputs": [
                    {
                        "OutputName": "evaluation",
                        "S3Output": {
                            "S3Uri": f"{artifacts}/evaluation/",
                            "LocalPath": "/opt/ml/processing/output/evaluation",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ],
                **output_key,
            },
            "resources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": defaults["transformInstanceType"],
                    "VolumeSizeInGB": 10,
                    **volume_key,
                }
            },
        },
        "transform": {
            "output": {
                "S3OutputPath": f"{artifacts}/test-predictions/",
                "Accept": "text/csv",
                "AssembleWith": "Line",
                **output_key,
            },
            "resources": {"InstanceType": defaults["transformInstanceType"], "InstanceCount": 1, **volume_key},
        },
        "endpoint": {
            "type": defaults["endpointType"],
            "productionVariants": _production_variants(defaults, model_name),
        },
    }
