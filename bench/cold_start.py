"""Lambda cold start and package size: each handler imported in a fresh interpreter, and `sam build` output."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from report import say

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = sorted(p for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())
PROBE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
TARGET_MS, TARGET_KB = 150, 50


def import_once(folder: Path) -> tuple[float, float]:
    """(wall ms of `import app`, -X importtime cumulative ms of app) in a brand-new interpreter."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    cumulative = next(
        int(m.group(1))
        for line in result.stderr.splitlines()
        if (m := re.match(r"import time:\s+\d+ \|\s+(\d+) \| app$", line))
    )
    return float(result.stdout.strip()) * 1000, cumulative / 1000


def built_sizes() -> dict[str, int]:
    with tempfile.TemporaryDirectory() as scratch:
        build = Path(scratch) / "build"
        subprocess.run(
            [str(Path(sys.executable).parent / "sam"), "build", "--template-file", str(ROOT / "template.yaml"),
             "--build-dir", str(build)],
            cwd=scratch, capture_output=True, check=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )  # fmt: skip
        return {
            folder.name: sum(
                p.stat().st_size for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
            for folder in build.iterdir()
            if folder.is_dir()
        }


def main(repeats: int = 5) -> dict[str, Any]:
    sizes = built_sizes()
    results = {}
    say(f"targets: import <= {TARGET_MS} ms, built artifact <= {TARGET_KB} KB")
    say(f"{'function':18} {'import ms':>10} {'importtime ms':>14} {'built KB':>9}")
    for folder in FUNCTIONS:
        samples = [import_once(folder) for _ in range(repeats)]
        wall = statistics.median(s[0] for s in samples)
        cumulative = statistics.median(s[1] for s in samples)
        logical = next((k for k in sizes if k.lower().startswith(folder.name.replace("_", ""))), None)
        size_kb = sizes.get(logical, 0) / 1024 if logical else float("nan")
        results[folder.name] = {
            "import_ms": wall,
            "importtime_ms": cumulative,
            "built_kb": size_kb,
            "built_as": logical,
        }
        say(f"{folder.name:18} {wall:>10.1f} {cumulative:>14.1f} {size_kb:>9.1f}")
    return {"repeats": repeats, "functions": results, "target_ms": TARGET_MS, "target_kb": TARGET_KB}


if __name__ == "__main__":
    main()
