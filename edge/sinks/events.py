"""JSON lines, one per processed frame, to a file or to stdout (`-`).

A file that already holds our JSON lines is appended to, so a restarted
service keeps its history: each run begins with a `start` line naming the
run, and every line after it carries that run's id. `--overwrite` replaces
the file instead; any other existing file is refused, never written into.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Self

import numpy as np

from edge import __version__
from edge.frames import Result
from edge.pause import PauseSwitch
from edge.retention import Retention, started
from edge.sinks.base import (
    PeriodicSync,
    Sink,
    SinkContext,
    SinkError,
    check_writable,
    describe_os_error,
)
from edge.sinks.rotation import rotate


def start_record(run: str, **details: object) -> dict:
    """The first line a run writes: its id and the wall-clock time it began."""
    return {
        "type": "start",
        "run": run,
        "t": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "version": __version__,
        **details,
    }


def is_ours(path: Path) -> bool:
    """An empty file, or one whose first line is a JSON object with a `type`:
    written by this program, so safe to append to."""
    with path.open("rb") as handle:
        first = handle.readline(65536)
    if not first.strip():
        return True
    try:
        record = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and "type" in record


class JsonLinesWriter:
    """Writes JSON objects as lines to a file or stdout; flushes each line so
    a `tail -f` or a reading process sees every frame as it happens.

    With `max_mb`, a file past that size is rotated (`rotation.rotate`) and a
    new one begun, starting with the `header` line (the run's start line), so
    every file says which run it belongs to.
    """

    def __init__(
        self,
        target: str,
        overwrite: bool = False,
        max_mb: float = 0.0,
        keep: int = 10,
        keep_days: float = 0.0,
    ) -> None:
        self.target = target
        self.max_bytes, self.keep = int(max_mb * 1e6), keep
        self.header: dict | None = None
        self.retention: Retention | None = None
        self._sync = PeriodicSync()  # a power cut costs seconds of lines, not 30
        if target == "-":
            self._handle = sys.stdout
            return
        path = Path(target)
        if keep_days:
            self.retention = Retention(path, keep_days, keep)
            if path.exists() and not overwrite:
                self.retention.began = started(path) or self.retention.began
                if self.retention.needs_new_file():
                    self.retention.start_new_file()
            self.retention.prune()
        check_writable(path, overwrite=True)
        appending = path.exists() and not overwrite
        try:
            ours = not appending or is_ours(path)
        except OSError as exc:
            raise SinkError(f"cannot read {describe_os_error(exc, path)}") from None
        if not ours:
            raise SinkError(
                f"{path} exists and is not a JSON-lines file of ours: choose another "
                "path or pass --overwrite to replace it"
            )
        try:
            self._handle = path.open("a" if appending else "w")
            if appending and path.stat().st_size and not _ends_with_newline(path):
                self._handle.write("\n")  # a line cut short by a power cut stays apart
        except OSError as exc:
            raise SinkError(f"cannot write {describe_os_error(exc, path)}") from None

    @property
    def description(self) -> str:
        return f"stats to {'stdout' if self.target == '-' else self.target}"

    def write(self, obj: dict) -> None:
        self._handle.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._handle.flush()
        if self._handle is not sys.stdout:
            self._sync(self.target)
        if self.max_bytes and self._handle.tell() >= self.max_bytes:
            self._rotate()
        if self.retention is not None:
            self.retention.check(self._rotate)

    def _rotate(self) -> None:
        path = Path(self.target)
        self._handle.close()
        if self.retention is not None:
            self.retention.start_new_file()
        else:
            rotate(path, self.keep)
        self._handle = path.open("w")
        if self.header is not None:
            self.write(self.header)

    def close(self) -> None:
        if self._handle is not sys.stdout:
            self._handle.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


class EventsSink(Sink):
    name = "events"

    def __init__(
        self,
        target: str,
        overwrite: bool = False,
        run: str = "",
        details: dict | None = None,
        max_mb: float = 0.0,
        keep: int = 10,
        keep_days: float = 0.0,
        pause: PauseSwitch | None = None,
    ) -> None:
        super().__init__()
        self.target, self.overwrite = target, overwrite
        self.run, self.details = run, details or {}
        self.max_mb, self.keep, self.keep_days = max_mb, keep, keep_days
        self._writer: JsonLinesWriter | None = None
        self.pause = pause  # its changes become `pause` records
        self._pause_seen = 0

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        output = context.config.output
        if not output.events:
            return None
        return cls(
            output.events,
            output.overwrite,
            context.run,
            context.run_details(),
            output.rotate_mb,
            output.keep_files,
            output.keep_days,
            context.pause,
        )

    @property
    def description(self) -> str:
        return f"events to {'stdout' if self.target == '-' else self.target}"

    def _open(self) -> None:
        self._writer = JsonLinesWriter(
            self.target, self.overwrite, self.max_mb, self.keep, self.keep_days
        )
        if self.run:
            self._writer.header = start_record(self.run, **self.details)
            self._writer.write(self._writer.header)
        if self.pause is not None and self.pause.paused:  # paused since before this start
            self._writer.write({"type": "pause", "run": self.run, "paused": True, "by": "restart"})
        self._pause_seen = len(self.pause.changes) if self.pause is not None else 0

    def _write_pause_changes(self) -> None:
        """Each pause or resume since the last frame (set from another thread:
        a list only appended to, read up to its length)."""
        if self.pause is None or len(self.pause.changes) <= self._pause_seen:
            return
        seen = len(self.pause.changes)
        for change in self.pause.changes[self._pause_seen : seen]:
            self._writer.write({"type": "pause", "run": self.run, **change})
        self._pause_seen = seen

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        self._write_pause_changes()
        event = result.to_event()
        self._writer.write({"type": event.pop("type"), "run": self.run, **event})

    def _close(self) -> None:
        self._write_pause_changes()
        self._writer.close()
