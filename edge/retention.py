"""`[output] keep_days`: events, stats and recordings older than that are
deleted, whatever their size, so a camera keeps no more than it must.

Each output file is started afresh once a day (the current file rotated to
`name.1.ext`, as size rotation does), and every file of that output older
than `keep_days` (rotated ones, recordings set aside while the disk was
full) is deleted: at start and then hourly. Only names this program writes are
ever deleted: `name.N.ext` from rotation (N up to the number kept, plus the
one rotation is about to drop) and `name.YYYYmmddTHHMMSS.ext`, a recording
set aside (edge/sinks/video.py); a file a user keeps beside ours
(`events.backup.jsonl`, `annotated.wedding.mkv`) is never touched, and each
deleted file is named in the log. The age of the current JSON-lines
file is its first line's, the run's `start` record; of anything else, its
last change. Wall-clock time (`clock`, which tests replace): a retention
period is a calendar matter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from edge.sinks.rotation import rotate

log = logging.getLogger(__name__)

clock = time.time
DAY_S = 86400.0
CHECK_S = 3600.0


def started(path: Path) -> float | None:
    """When a JSON-lines file of ours began: its first line's time (None if unknown)."""
    try:
        with path.open() as handle:
            first = json.loads(handle.readline(65536))
        return dt.datetime.fromisoformat(first["t"]).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ours(path: Path, other: Path, keep_files: int) -> bool:
    """Whether `other` is a name this program gives `path`'s older files:
    `stem.N.ext` with 1 <= N <= keep_files + 1 (edge/sinks/rotation.py) or
    `stem.YYYYmmddTHHMMSS.ext` (a recording set aside, edge/sinks/video.py)."""
    pattern = rf"{re.escape(path.stem)}\.(?:(\d{{1,6}})|\d{{8}}T\d{{6}}){re.escape(path.suffix)}"
    match = re.fullmatch(pattern, other.name)
    if match is None:
        return False
    number = match.group(1)
    return number is None or 1 <= int(number) <= max(keep_files, 1) + 1


def older_files(path: Path, keep_days: float, keep_files: int = 1) -> list[Path]:
    """The output's older files of ours (`ours`) last changed before the cut-off."""
    cutoff = clock() - keep_days * DAY_S
    found = []
    for other in path.parent.glob(f"{path.stem}.*{path.suffix}"):
        if other == path or not ours(path, other, keep_files):
            continue
        try:
            if other.is_file() and other.stat().st_mtime < cutoff:
                found.append(other)
        except OSError:
            continue
    return sorted(found)


class Retention:
    """Keeps one output within `keep_days`; `due()` says when to look again."""

    def __init__(self, path: Path, keep_days: float, keep_files: int) -> None:
        self.path, self.keep_days, self.keep_files = path, keep_days, keep_files
        self.began = clock()
        self._checked = -CHECK_S

    def due(self) -> bool:
        return bool(self.keep_days) and clock() - self._checked >= CHECK_S

    def needs_new_file(self) -> bool:
        """The current file is a day old: start another, so old lines can go."""
        return bool(self.keep_days) and clock() - self.began >= DAY_S

    def start_new_file(self) -> None:
        rotate(self.path, max(self.keep_files, 1))
        self.began = clock()

    def check(self, finish_file: Callable[[], None]) -> None:
        """Hourly: a day-old current file is finished by its writer
        (`finish_file`, which closes it and starts it anew through
        `start_new_file`), and what is past `keep_days` deleted."""
        if not self.due():
            return
        if self.needs_new_file():
            finish_file()
        self.prune()

    def prune(self) -> list[Path]:
        """Delete what is past `keep_days`; returns what went."""
        self._checked = clock()
        gone = older_files(self.path, self.keep_days, self.keep_files)
        for old in gone:
            old.unlink(missing_ok=True)
            log.info("%s deleted: older than %g days (keep_days)", old, self.keep_days)
        return gone
