"""Packaging as `sam deploy --resolve-s3` does it: the real `sam package`, aimed at the local S3.

Every local path that `sam package` would upload (``CodeUri``, ``DefinitionUri``, a Glue job's
``Command.ScriptLocation``, ...) becomes an object in a bucket named like SAM's managed bucket, keyed
``<stack name>/<md5>`` as in ``samconfig.toml``'s ``s3_prefix``. The local deploy then reads the
packaged template, so functions, jobs and the state machine see S3 URIs exactly as CloudFormation
passes them, and load their code from those objects.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from local_runtime.template import REGION

MANAGED_BUCKET_PREFIX = "aws-sam-cli-managed-default-samclisourcebucket-"


class PackagingFailed(Exception):
    """`sam package` refused the template; the message carries its output."""


def s3_location(value: Any) -> tuple[str, str]:
    """A packaged property's bucket and key: ``s3://bucket/key`` or ``{Bucket, Key}``."""
    if isinstance(value, dict) and "Bucket" in value and "Key" in value:
        return value["Bucket"], value["Key"]
    if isinstance(value, str) and value.startswith("s3://"):
        bucket, _, key = value[len("s3://") :].partition("/")
        return bucket, key
    raise PackagingFailed(f"{value!r} is not a packaged S3 location; was the template packaged?")


def create_managed_bucket(s3: Any) -> str:
    """The stand-in for the bucket of SAM's managed stack: private and encrypted, as SAM creates it."""
    name = f"{MANAGED_BUCKET_PREFIX}{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return name


def sam_package(
    template: Path, bucket: str, prefix: str, output: Path, endpoint_url: str, credentials: dict[str, str]
) -> Path:
    """Runs `sam package` against the local endpoint and returns the packaged template."""
    sam = Path(sys.executable).parent / "sam"
    env = {
        **os.environ,
        **credentials,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SAM_CLI_TELEMETRY": "0",
    }
    env.pop("AWS_PROFILE", None)
    command = [str(sam), "package", "--template-file", str(template), "--s3-bucket", bucket, "--s3-prefix", prefix]
    result = subprocess.run(
        [*command, "--output-template-file", str(output)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PackagingFailed(f"sam package failed:\n{result.stdout}\n{result.stderr}".strip())
    return output
