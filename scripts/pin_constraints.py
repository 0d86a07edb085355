"""Write the tested dependency sets for Raspberry Pi OS: constraints/pi-*.txt.

`pyproject.toml` stays loose for library users. A Pi installed next year,
though, should get the versions the tests and `make arm64-check` passed with,
not whatever is newest that week. This asks pip's own resolver which wheels a
Pi would get (its CPU, its Python, its system NumPy's major version, which
picamera2's compiled modules need) and writes them as a constraints file that
`edge/systemd/install.sh` and `.ci/run` install with.

    python scripts/pin_constraints.py            # rewrite both files
    python scripts/pin_constraints.py --check    # exit 1 if they are stale

Needs network access to the package index; the result depends on the day, so
a rewrite is a reviewed change: run the tests and `make arm64-check` on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "constraints"


@dataclass(frozen=True)
class Target:
    """One Raspberry Pi OS release as pip sees it."""

    name: str
    python: str  # the release's python3
    glibc: tuple[int, int]  # the newest manylinux tag its glibc accepts
    numpy: str  # the system NumPy's major version (python3-numpy)
    note: str


TARGETS = (
    Target(
        "pi-bookworm",
        "3.11",
        (2, 36),
        "1",
        "Raspberry Pi OS Bookworm (Debian 12): Python 3.11, system NumPy 1.24",
    ),
    Target(
        "pi-trixie",
        "3.13",
        (2, 41),
        "2",
        "Raspberry Pi OS Trixie (Debian 13): Python 3.13, system NumPy 2.2",
    ),
)


def platforms(glibc: tuple[int, int], machine: str = "aarch64") -> list[str]:
    """Every manylinux tag a system with this glibc accepts (pip does not expand them)."""
    major, newest = glibc
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(17, newest + 1)]
    return [*tags, f"manylinux2014_{machine}"]


def resolve(target: Target) -> list[str]:
    """The `name==version` lines pip would install on the target for this project."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            "--python-version",
            target.python,
            "--target",
            str(Path(scratch) / "target"),
            "--report",
            str(report),
        ]
        for tag in platforms(target.glibc):
            command += ["--platform", tag]
        command += [str(ROOT), f"numpy=={target.numpy}.*"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        installed = json.loads(report.read_text())["install"]
    pins = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in installed
        if item["metadata"]["name"] != "emotion-edge"
    }
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def render(target: Target, pins: list[str]) -> str:
    header = [
        f"# {target.note}, arm64.",
        "# The runtime set the tests and `make arm64-check` passed with; installed by",
        "# edge/systemd/install.sh. Regenerate: python scripts/pin_constraints.py",
    ]
    return "\n".join([*header, *pins]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = 0
    OUT_DIR.mkdir(exist_ok=True)
    for target in TARGETS:
        path = OUT_DIR / f"{target.name}.txt"
        text = render(target, resolve(target))
        if args.check:
            if not path.exists() or path.read_text() != text:
                print(f"{path.relative_to(ROOT)} is stale: run python {__file__}")
                stale = 1
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({text.count('==')} pins)")
    return stale


if __name__ == "__main__":
    sys.exit(main())
