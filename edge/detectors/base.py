"""The Detector base class: finds face boxes in a BGR frame."""

from __future__ import annotations

import threading

import numpy as np

from edge.frames import Detection


class DetectorError(RuntimeError):
    """A detector that cannot be created; the message says how to fix it."""


class Detector:
    """Lifecycle in the base class; a backend fills in `_open`, `_detect`, `_close`."""

    name = "detector"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "new"

    def open(self) -> Detector:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self.name} detector is already {self._state}")
            self._open()
            self._state = "open"
        return self

    def detect(self, image: np.ndarray) -> list[Detection]:
        if self._state != "open":
            raise RuntimeError(f"{self.name} detector is not open")
        return self._detect(image)

    def close(self) -> None:
        with self._lock:
            if self._state == "open":
                self._close()
            self._state = "closed"

    def __enter__(self) -> Detector:
        return self.open() if self._state == "new" else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> None:
        pass

    def _detect(self, image: np.ndarray) -> list[Detection]:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def clip_box(x: float, y: float, w: float, h: float, width: int, height: int):
    """(x, y, w, h) as ints, clipped to the frame; None if nothing is left."""
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0
