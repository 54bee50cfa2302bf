"""Copying between the local S3 (moto) and folders, as SageMaker and Glue do around a job."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def keys_under(s3: Any, uri: str) -> list[str]:
    bucket, prefix = split_uri(uri)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    return keys


def download(s3: Any, uri: str, destination: Path) -> list[Path]:
    """Downloads an object, or every object under a prefix, keeping paths relative to the prefix."""
    bucket, prefix = split_uri(uri)
    written = []
    for key in keys_under(s3, uri):
        relative = key[len(prefix) :].lstrip("/") or Path(key).name
        target = destination / relative
        if not target.resolve().is_relative_to(destination.resolve()):
            raise ValueError(f"refusing to write outside {destination}: {key}")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        written.append(target)
    return written


def upload(s3: Any, source: Path, uri: str, only: set[Path] | None = None) -> list[str]:
    """Uploads the files under ``source`` (or just ``only``) below the URI's prefix."""
    bucket, prefix = split_uri(uri)
    prefix = prefix.rstrip("/")
    keys = []
    for path in sorted(p for p in source.rglob("*") if p.is_file() and (only is None or p in only)):
        key = f"{prefix}/{path.relative_to(source).as_posix()}" if prefix else path.relative_to(source).as_posix()
        s3.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def etag(s3: Any, uri: str) -> str:
    """The object's ETag: S3's name for its content, which changes whenever the object does."""
    bucket, key = split_uri(uri)
    return str(s3.head_object(Bucket=bucket, Key=key)["ETag"])


def extract_tarball(s3: Any, uri: str, destination: Path) -> Path:
    bucket, key = split_uri(uri)
    destination.mkdir(parents=True, exist_ok=True)
    archive = destination.parent / f"{destination.name}.tar.gz"
    s3.download_file(bucket, key, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()
    return destination


def make_tarball(source: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    return archive
