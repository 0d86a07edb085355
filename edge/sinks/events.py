"""JSON lines, one per processed frame, to a file or to stdout (`-`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Self

import numpy as np

from edge.frames import Result
from edge.sinks.base import Sink, SinkContext, check_writable


class JsonLinesWriter:
    """Appends JSON objects as lines to a file or stdout; flushes each line so
    a `tail -f` or a reading process sees every frame as it happens."""

    def __init__(self, target: str, overwrite: bool = False) -> None:
        self.target = target
        if target == "-":
            self._handle = sys.stdout
        else:
            path = Path(target)
            check_writable(path, overwrite)
            self._handle = path.open("w")

    def write(self, obj: dict) -> None:
        self._handle.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not sys.stdout:
            self._handle.close()


class EventsSink(Sink):
    name = "events"

    def __init__(self, target: str, overwrite: bool = False) -> None:
        super().__init__()
        self.target, self.overwrite = target, overwrite
        self._writer: JsonLinesWriter | None = None

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        output = context.config.output
        return cls(output.events, output.overwrite) if output.events else None

    def _open(self) -> None:
        self._writer = JsonLinesWriter(self.target, self.overwrite)

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        self._writer.write(result.to_event())

    def _close(self) -> None:
        self._writer.close()
