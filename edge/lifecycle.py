"""Open once, close once: the lifecycle shared by sources, detectors and sinks.

The base class owns the lock, the state and the double-open check, so a
backend only fills in `_open` and `_close` (as picamera2's Encoder does with
start/stop). Every resource is also a context manager.
"""

from __future__ import annotations

import threading
from typing import Self


class Lifecycle:
    """States: new -> open -> closed. `closed` is final; closing twice is harmless."""

    description = "resource"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "new"

    def open(self) -> Self:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self.description} is already {self._state}")
            self._open()
            self._state = "open"
        return self

    def close(self) -> None:
        with self._lock:
            if self._state == "open":
                self._close()
            self._state = "closed"

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"{self.description} is not open")

    def __enter__(self) -> Self:
        return self.open() if self._state == "new" else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass
