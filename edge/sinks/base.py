"""The Sink base class: where results go (screen, video file, events)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edge.frames import Result


class SinkError(RuntimeError):
    """A sink that cannot be opened; the message says how to fix it."""


class Sink:
    """Lifecycle in the base class; a backend fills in `_open`, `_write`, `_close`.

    `needs_image`: the sink draws the annotated frame, so the pipeline renders
    the overlay only when some sink needs it.
    """

    needs_image = False
    name = "sink"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "new"
        self.stop_requested = False

    def open(self) -> Sink:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self.name} sink is already {self._state}")
            self._open()
            self._state = "open"
        return self

    def write(self, result: Result, annotated: np.ndarray | None) -> None:
        self._write(result, annotated)

    def close(self) -> None:
        with self._lock:
            if self._state == "open":
                self._close()
            self._state = "closed"

    def __enter__(self) -> Sink:
        return self.open() if self._state == "new" else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> None:
        pass

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse to replace a file the user has unless told to (`--overwrite`)."""
    if path.exists() and not overwrite:
        raise SinkError(f"{path} exists: choose another path or pass --overwrite to replace it")
    if path.is_dir():
        raise SinkError(f"{path} is a folder: give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
