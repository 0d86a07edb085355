"""What a committed result was made from: the commit, whether the tree was
clean, and the sha256 of the model and the clip it measured.

Every figure in README.md and docs/ comes from a results file carrying this
(tests/test_provenance.py checks each against the shipped model and the files
it names); writing committed results from an uncommitted tree is refused
unless asked for (`--allow-dirty`), and then recorded.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "emotion_int8.tflite"
log = logging.getLogger("benchmarks")


def sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


# Where results are written: a run that rewrote one file is still from clean code.
OUTPUTS = ("benchmarks/results", "docs/evaluation", "tests/baselines")


def git_commit() -> str | None:
    """The checked-out commit (None: not a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    return commit.strip() if commit else None


def tree_is_clean() -> bool | None:
    """No uncommitted change to a tracked file outside the results folders
    (None: not a git checkout)."""
    excluded = [f":(exclude){folder}" for folder in OUTPUTS]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return None if status is None else status.strip() == ""


def refuse_dirty(allow_dirty: bool) -> bool:
    """True (after one line) when committed results would come from an uncommitted tree."""
    if allow_dirty or tree_is_clean() is not False:
        return False
    log.error(
        "the working tree has uncommitted changes: commit them first, so the results "
        "name the code that made them, or pass --allow-dirty (recorded in the results)"
    )
    return True


# The code a run measures is the code checked out when it started: a commit
# made while it runs (minutes, hours for a soak) must not be stamped on it.
_started: dict | None = None


def record_start() -> None:
    """Note the commit and the tree's state now, as the run begins; the
    results' provenance is then this, whenever they are written."""
    global _started
    _started = {"git_commit": git_commit(), "git_clean": tree_is_clean()}


def provenance(
    clip: Path | str | None = None, allow_dirty: bool = False, model: Path | str = MODEL
) -> dict:
    """The commit, whether the tree was clean (as the run started, where it
    said so with `record_start`), the model's and the clip's sha256."""

    def named(path: Path) -> str:
        path = path.resolve()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    now = {"git_commit": git_commit(), "git_clean": tree_is_clean()}
    facts = {
        **(_started or now),
        "allow_dirty": allow_dirty,
        "model": named(Path(model)),
        "model_sha256": sha256(model),
    }
    if _started is not None and now["git_commit"] != _started["git_commit"]:
        log.warning(
            "HEAD moved from %s to %s during the run: the results name the first",
            (_started["git_commit"] or "?")[:12],
            (now["git_commit"] or "?")[:12],
        )
        facts["git_commit_at_end"] = now["git_commit"]
    if clip is not None:
        facts["clip"] = named(Path(clip))
        facts["clip_sha256"] = sha256(clip)
    return facts
