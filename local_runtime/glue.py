"""Glue on localhost: ``startJobRun.sync`` runs the job's script on local Spark.

Spark here cannot read the local S3, so every ``s3://`` job argument is mirrored: objects under it
are downloaded into a scratch folder before the run, the argument points at that folder, and
whatever the script writes there is uploaded back afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_runtime import s3files
from local_runtime.lambdas import ProviderError


class LocalGlue:
    def __init__(self, s3: Callable[[], Any], workdir: Path) -> None:
        self._s3 = s3
        self.workdir = workdir
        self.scripts: dict[str, Path] = {}
        self._running: set[subprocess.Popen[bytes]] = set()

    def add_job(self, name: str, script: Path) -> None:
        self.scripts[name] = script

    def run_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        """What ``glue:startJobRun.sync`` returns: the finished JobRun."""
        name = request["JobName"]
        if name not in self.scripts:
            raise ProviderError("Glue.EntityNotFoundException", f"Job {name} not found")
        run_id = f"jr_{secrets.token_hex(32)}"
        started = time.time()
        mirror = self.workdir / "glue" / run_id / "s3"
        arguments = dict(request.get("Arguments", {}))
        local_args, mirrored = self._mirror_arguments(arguments, mirror)
        command = [sys.executable, str(self.scripts[name]), "--JOB_NAME", name, "--JOB_RUN_ID", run_id]
        for key, value in local_args.items():
            command += [key, value]
        log_path = self.workdir / "glue" / run_id / "driver.log"
        with log_path.open("wb") as log:
            code = subprocess.call(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYSPARK_PYTHON": sys.executable}
            )
        for uri, (local, downloaded) in mirrored.items():
            # Hadoop's local file system leaves .crc checksum files that S3 output would not have.
            written = {
                p
                for p in local.rglob("*")
                if p.is_file() and not p.name.startswith(".") and downloaded.get(p) != p.stat().st_mtime_ns
            }
            s3files.upload(self._s3(), local, uri, only=written)
        run = {
            "Id": run_id,
            "JobName": name,
            "Arguments": arguments,
            "StartedOn": started,
            "CompletedOn": time.time(),
            "ExecutionTime": max(1, round(time.time() - started)),
            "JobRunState": "SUCCEEDED" if code == 0 else "FAILED",
            "GlueVersion": "5.0",
            "Attempt": 0,
        }
        if code != 0:
            run["ErrorMessage"] = self._error_message(log_path.read_text(errors="replace"))
        if code != 0:
            # AWS names this States.TaskFailed, a name reserved for the engine itself.
            raise ProviderError("Glue.JobRunFailed", json.dumps(run))
        return run

    def stop(self) -> None:
        for process in list(self._running):
            process.kill()

    @staticmethod
    def _spark_env() -> dict[str, str]:
        """Spark sized for this machine, as Glue sizes it for its workers: few shuffle partitions, no UI."""
        cores = str(os.cpu_count() or 2)
        submit = f"--master local[{cores}] --conf spark.sql.shuffle.partitions={cores} --conf spark.ui.enabled=false"
        return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_SUBMIT_ARGS": f"{submit} pyspark-shell"}

    def _mirror_arguments(
        self, arguments: dict[str, str], mirror: Path
    ) -> tuple[dict[str, str], dict[str, tuple[Path, dict[Path, int]]]]:
        """Maps s3:// arguments to local folders; remembers what was downloaded so only new files go back."""
        local_args, mirrored = {}, {}
        for key, value in arguments.items():
            if isinstance(value, str) and value.startswith("s3://"):
                bucket, prefix = s3files.split_uri(value)
                local = mirror / bucket / prefix
                keys = s3files.keys_under(self._s3(), value)
                if keys == [prefix]:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    s3files.download(self._s3(), value, local.parent)
                else:
                    local.mkdir(parents=True, exist_ok=True)
                    downloaded = s3files.download(self._s3(), value, local)
                    mirrored[value] = (local, {p: p.stat().st_mtime_ns for p in downloaded})
                local_args[key] = str(local)
            else:
                local_args[key] = value
        return local_args, mirrored

    @staticmethod
    def _error_message(log: str) -> str:
        """The exception line of a Python traceback, as Glue reports it."""
        lines = [line for line in log.splitlines() if line.strip()]
        for line in reversed(lines):
            if not line.startswith((" ", "\t")) and ("Error" in line or "Exception" in line) and ":" in line:
                return line.strip()
        return lines[-1] if lines else "the job failed without output"
