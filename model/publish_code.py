"""Deploy-time custom resource: publishes this folder as the source tarball SageMaker script mode loads.

`sam package` uploads this folder as the publisher function's code, so the function holds exactly the
training, serving and evaluation code of the deploy. On Create and Update it packs that code
reproducibly, puts it in the artifacts bucket under a key that carries its SHA-256 (and the same files
unpacked beside it, for Processing), and returns the S3 URIs; the template hands them to the
workflow. Unchanged code gives the same key, and a key already published is not written again, so a
redeploy uploads nothing and a run in flight keeps the code it started with.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
# Published name -> file in this folder. The framework containers pip-install a requirements.txt from the
# code (xgboost, for training on several hosts); here it has another name, or `sam build` would install it
# into this function.
PUBLISHED = {
    "train.py": "train.py",
    "inference.py": "inference.py",
    "evaluate.py": "evaluate.py",
    "requirements.txt": "container-requirements.txt",
}


def source_tarball(folder: Path) -> bytes:
    """A gzipped tar of the published files whose bytes depend only on their contents."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(PUBLISHED):
            data = (folder / PUBLISHED[name]).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def code_key(prefix: str, tarball: bytes) -> str:
    return f"{prefix.rstrip('/')}/model-source-{hashlib.sha256(tarball).hexdigest()[:16]}.tar.gz"


def source_prefix(key: str) -> str:
    """The same files unpacked, for SageMaker Processing, whose inputs are copied as they are."""
    return key.removesuffix(".tar.gz") + "/"


@cache
def _s3() -> Any:
    return boto3.client("s3")


def _published(bucket: str, key: str) -> bool:
    try:
        _s3().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # Without s3:ListBucket a missing key answers 403 rather than 404; either way it is not there.
        if error.response["Error"]["Code"] in ("404", "403", "NoSuchKey"):
            return False
        raise
    return True


def _respond(event: dict[str, Any], status: str, physical_id: str, data: dict[str, str], reason: str = "") -> None:
    """CloudFormation waits for this PUT to the pre-signed ResponseURL, not for the return value."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or status,
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    url = event["ResponseURL"]
    if not url.startswith(("https://", "http://127.0.0.1:")):
        raise ValueError("ResponseURL must be CloudFormation's pre-signed HTTPS URL")
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - checked above
        reply.read()


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    properties = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or f"{properties.get('Bucket', 'unknown')}/model-source"
    if event["RequestType"] == "Delete":
        # Published versions stay: models in the registry still name the code that trained them.
        _respond(event, "SUCCESS", physical_id, {})
        return
    try:
        tarball = source_tarball(HERE)
        key = code_key(properties.get("Prefix", "code/"), tarball)
        # The tarball goes last: once it is there, so are the unpacked files beside it.
        if not _published(properties["Bucket"], key):
            for name, source in PUBLISHED.items():
                _s3().put_object(
                    Bucket=properties["Bucket"], Key=source_prefix(key) + name, Body=(HERE / source).read_bytes()
                )
            _s3().put_object(Bucket=properties["Bucket"], Key=key, Body=tarball)
    except Exception as error:  # every failure must reach CloudFormation, or the stack hangs for an hour
        _respond(event, "FAILED", physical_id, {}, reason=f"{type(error).__name__}: {error}")
        return
    bucket = properties["Bucket"]
    data = {"Uri": f"s3://{bucket}/{key}", "Key": key, "SourceUri": f"s3://{bucket}/{source_prefix(key)}"}
    _respond(event, "SUCCESS", physical_id, data)
