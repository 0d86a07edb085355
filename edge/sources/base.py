"""The Source base class: where frames come from, opened once and closed once."""

from __future__ import annotations

import threading

import numpy as np

Capture = tuple[np.ndarray, float | None]
"""A BGR image and its capture time on the monotonic clock (None: stamp on arrival)."""


class SourceError(RuntimeError):
    """A source that cannot be opened; the message says what to check."""


class SourceLost(RuntimeError):
    """A live source stopped delivering (unplugged camera, dropped stream)."""


class FrameError(RuntimeError):
    """One frame could not be decoded; the source goes on."""


class Source:
    """Lifecycle in the base class; a backend fills in `_open`, `_read`, `_close`.

    `live` sources (cameras, streams) run at their own pace, so the pipeline
    keeps only the newest frame; files and images are processed frame by frame.
    """

    live = False
    fps: float | None = None
    description = "source"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "new"

    def open(self) -> Source:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self.description} is already {self._state}")
            self._open()
            self._state = "open"
        return self

    def read(self) -> Capture | None:
        """The next frame, or None when a finite source has ended."""
        if self._state != "open":
            raise RuntimeError(f"{self.description} is not open")
        return self._read()

    def reopen(self) -> None:
        """Close and open again, after `SourceLost`; raises SourceError if it fails."""
        with self._lock:
            self._close()
            self._open()

    def close(self) -> None:
        with self._lock:
            if self._state == "open":
                self._close()
            self._state = "closed"

    def __enter__(self) -> Source:
        return self.open() if self._state == "new" else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> Capture | None:
        raise NotImplementedError

    def _close(self) -> None:
        pass
