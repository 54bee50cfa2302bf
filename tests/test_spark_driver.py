"""The warm Spark driver that runs Glue job scripts: each job as its own program, in a JVM kept warm."""

from __future__ import annotations

import textwrap

from local_runtime.spark_driver import DRIVERS

OWNER = object()


def _run(tmp_path, name: str, source: str, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(source))
    log = tmp_path / f"{name}.log"
    code = DRIVERS.run(OWNER, script, list(argv), env or {"JOB_SETTING": name}, log)
    return code, log.read_text()


def test_jobs_in_a_warm_driver_see_their_own_arguments_and_environment_and_nothing_a_job_before_left(tmp_path):
    code, log = _run(
        tmp_path,
        "first",
        """
        import os, sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        spark.range(3).createOrReplaceTempView("left_behind")
        spark.range(5).cache().count()
        print("args", sys.argv[1:], os.environ["JOB_SETTING"], "pid", os.getpid())
    """,
        "--JOB_NAME",
        "first",
    )
    assert code == 0 and "args ['--JOB_NAME', 'first'] first" in log

    first_pid = log.split("pid ")[1].split()[0]
    code, log = _run(
        tmp_path,
        "second",
        """
        import os, sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        print("view kept:", spark.catalog.tableExists("left_behind"), "setting:", os.environ["JOB_SETTING"])
        print("pid", os.getpid())
        sys.exit(0 if sys.argv[1:] == ["--JOB_NAME", "second"] else 3)
    """,
        "--JOB_NAME",
        "second",
    )
    assert code == 0 and "view kept: False setting: second" in log
    assert f"pid {first_pid}" in log  # the same warm process ran both


def test_a_failing_job_reports_its_traceback_and_exit_code_and_the_driver_serves_the_next(tmp_path):
    code, log = _run(tmp_path, "raises", "raise ValueError('30 of 180 rows are malformed')\n")
    assert code == 1 and "ValueError: 30 of 180 rows are malformed" in log
    assert _run(tmp_path, "exits", "import sys\nsys.exit(7)\n")[0] == 7
    code, log = _run(
        tmp_path,
        "after",
        "from pyspark.sql import SparkSession\nprint(SparkSession.builder.getOrCreate().range(4).count())\n",
    )
    assert code == 0 and log.strip().endswith("4")
