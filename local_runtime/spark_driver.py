"""A warm Spark driver: one JVM that runs Glue job scripts one after another, as Glue's own warm workers do.

Starting Spark costs seconds of JVM start-up and JIT warm-up; a small job after that takes a fraction of it.
``SparkDrivers`` keeps idle drivers for the life of the process and starts another when all are busy. A job
script runs as ``__main__`` with its own ``sys.argv``, environment and output file, and its
``SparkSession.builder.getOrCreate()`` returns the driver's session, as on Glue. Between jobs the driver
drops cached data and temporary views.

Run as ``python -m local_runtime.spark_driver``: it reads one JSON job per line on stdin and answers each
with ``{"code": <exit code>}`` on stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any


def spark_environment() -> dict[str, str]:
    """Spark sized for this machine, as Glue sizes it for its workers: few shuffle partitions, no UI."""
    cores = str(os.cpu_count() or 2)
    submit = f"--master local[{cores}] --conf spark.sql.shuffle.partitions={cores} --conf spark.ui.enabled=false"
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_SUBMIT_ARGS": f"{submit} pyspark-shell"}


class _Driver:
    def __init__(self) -> None:
        # Spark writes spark-warehouse/ and metastore files in its working directory.
        self.workdir = tempfile.TemporaryDirectory(prefix="spark-driver-")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime.spark_driver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # Spark's own log lines; each job's output goes to its log file
            env=spark_environment(),
            cwd=self.workdir.name,
            text=True,
        )

    def run(self, script: Path, argv: list[str], env: dict[str, str], log: Path) -> int:
        assert self.process.stdin and self.process.stdout
        request = {"script": str(script), "argv": argv, "env": env, "log": str(log)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:  # the driver died (killed, or the JVM took it down)
            return self.process.wait() or 1
        return int(json.loads(answer)["code"])

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        self.workdir.cleanup()


class SparkDrivers:
    """Idle drivers, shared by every local stack of this process."""

    def __init__(self) -> None:
        self._idle: list[_Driver] = []
        self._busy: dict[_Driver, object] = {}  # driver -> who asked for the job
        self._lock = threading.Lock()
        atexit.register(self.stop)

    def run(self, owner: object, script: Path, argv: list[str], env: dict[str, str], log: Path) -> int:
        with self._lock:
            driver = self._idle.pop() if self._idle else None
        driver = driver or _Driver()
        with self._lock:
            self._busy[driver] = owner
        try:
            code = driver.run(script, argv, env, log)
        finally:
            with self._lock:
                self._busy.pop(driver, None)
                alive = driver.process.poll() is None
                if alive:
                    self._idle.append(driver)
            if not alive:
                driver.stop()
        return code

    def stop_running(self, owner: object) -> None:
        """Kills the drivers in the middle of ``owner``'s jobs (its stack is closing); idle ones stay warm."""
        with self._lock:
            busy = [driver for driver, asked in self._busy.items() if asked is owner]
        for driver in busy:
            driver.stop()

    def stop(self) -> None:
        with self._lock:
            drivers = [*self._idle, *self._busy]
            self._idle.clear()
        for driver in drivers:
            driver.stop()


DRIVERS = SparkDrivers()


# ------------------------------------------------------------------ the driver process
def _run_job(spark: Any, request: dict[str, Any]) -> int:
    script = request["script"]
    saved_argv, saved_path, saved_env = sys.argv, list(sys.path), dict(os.environ)
    saved_fds = os.dup(1), os.dup(2)
    with open(request["log"], "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.argv, sys.path[0:0] = [script, *request["argv"]], [str(Path(script).parent)]
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # the job's failure: reported as its exit code and traceback
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.argv, sys.path[:] = saved_argv, saved_path
            os.environ.clear()
            os.environ.update(saved_env)
    return code


def _clean(spark: Any) -> bool:
    """Drops what one job left in the session; False when the session cannot serve another job."""
    try:
        spark.catalog.clearCache()
        for table in spark.catalog.listTables():
            if table.isTemporary:
                spark.catalog.dropTempView(table.name)
    except Exception:  # e.g. the job stopped the session: this driver is done
        return False
    return True


def _serve() -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("glue-local-driver").getOrCreate()
    # Answers go to a copy of stdout: the job's own output is redirected to its log file.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        code = _run_job(spark, json.loads(line))
        answers.write(json.dumps({"code": code}) + "\n")
        if not _clean(spark):
            return


if __name__ == "__main__":
    _serve()
