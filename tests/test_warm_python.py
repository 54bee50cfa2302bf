"""The warm Python that SageMaker's containers fork from: each job is still a process of its own."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from local_runtime.sagemaker.common import CONTAINER_PYTHON
from local_runtime.warm_python import unsupported_options

SCRIPT = """
import json, os, sys
import numpy
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path0": sys.path[0],
    "random": numpy.random.rand(), "name": __name__,
}))
if "--fail" in sys.argv:
    raise ValueError("the data has a word in it")
if "--exit" in sys.argv:
    sys.exit(sys.argv[-1])
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(SCRIPT)
    return code / "train.py"


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    log = script.parent / "log.txt"
    with log.open("wb") as out:
        process = CONTAINER_PYTHON.popen([script.name, *args], script.parent, env or {"SM_MODEL_DIR": "/m"}, out)
        code = process.wait(60)
    return code, log.read_text()


def test_a_job_runs_as_main_with_its_own_argv_working_directory_and_environment_only(script: Path) -> None:
    code, log = _run(script, "--epochs", "3")
    seen = json.loads(log.splitlines()[0])
    assert code == 0
    assert seen["argv"] == ["train.py", "--epochs", "3"]
    assert seen["cwd"] == str(script.parent)
    assert seen["path0"] == str(script.parent)  # as `python train.py` puts the script's folder first
    assert seen["env"] == {"SM_MODEL_DIR": "/m"}  # nothing of the runtime's environment leaks in
    assert seen["name"] == "__main__"


def test_an_uncaught_error_exits_1_with_the_scripts_own_traceback(script: Path) -> None:
    code, log = _run(script, "--fail")
    assert code == 1
    assert "ValueError: the data has a word in it" in log
    assert 'File "train.py", line 9, in <module>' in log
    assert "warm_python" not in log and "runpy" not in log


@pytest.mark.parametrize(("reason", "expected"), [("4", 1), ("no rows left", 1)])
def test_sys_exit_with_a_message_exits_1_and_prints_it(script: Path, reason: str, expected: int) -> None:
    code, log = _run(script, "--exit", reason)
    assert code == expected
    assert reason in log


def test_two_jobs_draw_different_random_numbers(script: Path) -> None:
    first, second = (json.loads(_run(script)[1].splitlines()[0])["random"] for _ in range(2))
    assert first != second


def test_a_killed_job_reports_the_signal_as_popen_does(tmp_path: Path) -> None:
    (tmp_path / "sleep.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    process = CONTAINER_PYTHON.popen(["sleep.py"], tmp_path, {}, subprocess.PIPE)
    assert process.stdout and process.stdout.readline() == b"started\n"
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.2)
    process.kill()
    assert process.wait(10) == -signal.SIGKILL


def test_modules_run_with_dash_m_and_unbuffered_output(tmp_path: Path) -> None:
    (tmp_path / "scorer.py").write_text("import sys\nprint('scored', sys.argv[1:])\n")
    process = CONTAINER_PYTHON.popen(["-u", "-m", "scorer", "--rows", "5"], tmp_path, {}, subprocess.PIPE)
    assert process.stdout and process.stdout.read() == b"scored ['--rows', '5']\n"
    assert process.wait(10) == 0


@pytest.mark.parametrize(
    ("argv", "refused"), [(["-c", "print(1)"], "-c"), (["-X", "dev", "a.py"], "-X"), ([], "(no script)")]
)
def test_interpreter_options_a_fork_cannot_honour_are_refused(argv: list[str], refused: str) -> None:
    assert unsupported_options(argv) == refused
    with pytest.raises(ValueError, match="not supported locally"):
        CONTAINER_PYTHON.popen(argv, Path("."), {}, subprocess.PIPE)


def test_the_frameworks_libraries_are_already_imported_when_a_job_starts(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text("import sys\nprint('sklearn.ensemble' in sys.modules)\n")
    process = CONTAINER_PYTHON.popen(["probe.py"], tmp_path, {}, subprocess.PIPE)
    assert process.stdout and process.stdout.read() == b"True\n"
