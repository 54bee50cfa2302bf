"""Jobs and models that bring their own container image rather than script mode.

The local runtime runs script mode in this Python (see training.py, processing.py, hosting.py). An image
that is not script mode can only run in Docker. Without Docker the job fails at once with a reason that
says so, and a workflow test mocks the state instead (the MockConfigFile). With ``docker`` on PATH, training
and processing run the image under SageMaker's container contract: ``/opt/ml`` mounted from the job's
folder, ``train`` as the argument of a training image, the entrypoint of a processing job. That path has
not been run on the machines this project is developed on, which have no Docker.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MOCK_HINT = "mock this state with the MockConfigFile (statemachine/test/MockConfigFile.json) to test the workflow"


def docker() -> str | None:
    """The docker CLI, when this machine has one."""
    return shutil.which("docker")


def needs_docker(what: str, image: str, script_mode: str) -> str:
    """SageMaker-style failure reason for an image the local runtime cannot run without Docker."""
    return (
        f"ClientError: {what} uses the container image {image} without script mode ({script_mode}); "
        f"the local runtime runs such an image only with Docker, which this machine does not have. "
        f"Install Docker, or {MOCK_HINT}."
    )


def run_image(
    image: str,
    opt_ml: Path,
    arguments: list[str],
    environment: dict[str, str],
    log_path: Path,
    timeout: float,
    entrypoint: list[str] | None = None,
) -> int:
    """Runs the image with the job's /opt/ml mounted; returns its exit code (untested here: no Docker)."""
    command = [docker() or "docker", "run", "--rm", "--network", "none", "-v", f"{opt_ml}:/opt/ml"]
    for key, value in environment.items():
        command += ["-e", f"{key}={value}"]
    if entrypoint:
        command += ["--entrypoint", entrypoint[0]]
        arguments = [*entrypoint[1:], *arguments]
    with log_path.open("wb") as log:
        return subprocess.run(
            [*command, image, *arguments], stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
        ).returncode
