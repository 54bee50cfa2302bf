"""What a user does with the pipeline, as plain calls: the CLI and the demo share them.

Each works against the local stack and against a deployed one: they are boto3 and HTTP calls.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import requests

MODEL_CODE_KEY = "code/model-source.tar.gz"
REVIEW_LINK = re.compile(r"(https?://\S+/approvals/[A-Za-z0-9_-]{32})")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def publish_model_code(s3: Any, artifacts_bucket: str, model_dir: Path) -> str:
    """Packs train.py and inference.py as the source tarball that SageMaker script mode downloads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(model_dir.glob("*.py")):
            tar.add(path, arcname=path.name)
    s3.put_object(Bucket=artifacts_bucket, Key=MODEL_CODE_KEY, Body=buffer.getvalue())
    return f"s3://{artifacts_bucket}/{MODEL_CODE_KEY}"


def review_link(message: str) -> str | None:
    match = REVIEW_LINK.search(message)
    return match.group(1) if match else None


def decide(link: str, decision: str, reviewer: str, comment: str = "", timeout: float = 30) -> requests.Response:
    """Does exactly what the page's button does: load the page, then POST the form with its token."""
    session = requests.Session()
    page = session.get(link, timeout=timeout)
    token = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or token is None:
        return page
    origin = re.match(r"https?://[^/]+", link)
    return session.post(
        link,
        data={"decision": decision, "csrf": token.group(1), "reviewer": reviewer, "comment": comment},
        headers={"Origin": origin.group(0) if origin else ""},
        timeout=timeout,
    )


def predict(predict_url: str, api_key: str, data: str, timeout: float = 30) -> requests.Response:
    return requests.post(predict_url, json={"data": data}, headers={"x-api-key": api_key}, timeout=timeout)
