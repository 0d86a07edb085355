"""`python -m benchmarks --against REF`: this tree's pipeline beside an older
commit's, on the same clip, in alternated pairs.

A change meant to make the pipeline faster is shown by running both versions
of the code on the same machine, at the same time of day, one after the
other: REF is checked out into a temporary git worktree, and each pair runs
the threaded pipeline (`benchmarks/runners.py`, unpaced) once from REF and
once from this tree, in an order that alternates. Each child process imports
the `edge` package of its own tree (checked by the path it reports). The
figure is the median of the pairs' FPS ratios (this tree / REF), with their
range; CPU % per frame the same way.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("benchmarks.against")
ROOT = Path(__file__).resolve().parent.parent
PAIRS = 5

# Run in the tree's own directory, so `import edge` finds that tree's package.
CHILD = """\
import json, sys
sys.path.insert(0, ".")
import edge
from benchmarks.runners import measure
figures = measure("threaded", sys.argv[1], int(sys.argv[2]))
figures["edge_package"] = edge.__file__
print("RESULT " + json.dumps(figures))
"""


def measure_in(tree: Path, clip: str, max_frames: int) -> dict:
    """The threaded pipeline's figures, run from `tree`'s code."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, clip, str(max_frames)],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the run in {tree} failed: {proc.stderr.strip()[-500:]}")
    figures = json.loads(lines[-1][len("RESULT ") :])
    package = Path(figures["edge_package"]).resolve()
    if not package.is_relative_to(tree.resolve()):
        raise RuntimeError(f"the run in {tree} imported {package}, not that tree's edge/")
    return figures


def resolve(ref: str) -> str:
    """REF's full commit id; a clear error when it is none, or without git."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise ValueError("--against needs git: apt install git") from None
    if proc.returncode != 0:
        raise ValueError(f"--against {ref}: not a commit in this repository")
    return proc.stdout.strip()


def run(ref: str, clip: str, pairs: int = PAIRS, max_frames: int = 0) -> dict:
    """`pairs` alternated runs of REF's and this tree's threaded pipeline."""
    commit = resolve(ref)
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(before), commit],
            cwd=ROOT,
            check=True,
        )
        try:
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for pair in range(pairs):
                order = [("before", before), ("after", ROOT)]
                for name, tree in order if pair % 2 == 0 else order[::-1]:
                    log.info("pair %d of %d: %s", pair + 1, pairs, name)
                    runs[name].append(measure_in(tree, clip, max_frames))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False
            )
    ratios = sorted(
        round(a["fps"] / b["fps"], 3) for b, a in zip(runs["before"], runs["after"], strict=True)
    )
    return {
        "before_commit": commit,
        "clip": clip,
        "pairs": pairs,
        "fps": {name: [round(r["fps"], 1) for r in items] for name, items in runs.items()},
        "cpu_percent": {name: [r["cpu_percent"] for r in items] for name, items in runs.items()},
        "fps_ratio_median": round(statistics.median(ratios), 3),
        "fps_ratio_range": [ratios[0], ratios[-1]],
    }


def table(result: dict) -> str:
    fps = result["fps"]
    lines = [
        "| code | FPS, each pair | median FPS | CPU % (median) |",
        "|---|---|---:|---:|",
    ]
    for name, label in (
        ("before", f"before (`{result['before_commit'][:7]}`)"),
        ("after", "after (this results file's commit)"),
    ):
        lines.append(
            f"| {label} | {', '.join(f'{v:.1f}' for v in fps[name])} | "
            f"{statistics.median(fps[name]):.1f} | "
            f"{statistics.median(result['cpu_percent'][name]):.0f} |"
        )
    low, high = result["fps_ratio_range"]
    lines += [
        "",
        f"After / before, the threaded pipeline's FPS: median of {result['pairs']} alternated "
        f"pairs **{result['fps_ratio_median']:.3f}** (range {low:.3f} to {high:.3f}), "
        f"on `{Path(result['clip']).name}`.",
    ]
    return "\n".join(lines)
