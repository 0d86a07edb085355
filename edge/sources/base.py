"""The Source base class: where frames come from, opened once and closed once."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge.lifecycle import Lifecycle


class Capture(NamedTuple):
    """What a source read: the BGR image, its capture time on the monotonic clock
    (None: stamp it on arrival), and optionally a smaller gray image to detect
    faces on (the Pi camera's low-resolution stream)."""

    image: np.ndarray
    timestamp: float | None = None
    detect_image: np.ndarray | None = None


class SourceError(RuntimeError):
    """A source that cannot be opened; the message says what to check."""


class SourceLost(RuntimeError):
    """A live source stopped delivering (unplugged camera, dropped stream)."""


class SourceFailed(RuntimeError):
    """A source that cannot recover in this process (a camera stack stuck in
    native code): the pipeline stops with an error, and a service restarts."""


class FrameError(RuntimeError):
    """One frame could not be decoded; the source goes on."""


class Source(Lifecycle):
    """A backend fills in `_open`, `_read`, `_close`; the lifecycle is the base's.

    `live` sources (cameras, streams) run at their own pace, so the pipeline
    keeps only the newest frame; files and images are processed frame by frame.
    """

    live = False
    network = False  # reached over a network: slower to come back, so waited for longer
    fps: float | None = None
    description = "source"

    def read(self) -> Capture | None:
        """The next frame, or None when a finite source has ended."""
        self._check_open()
        return self._read()

    def reopen(self) -> None:
        """Close and open again, after `SourceLost`; raises SourceError if it fails."""
        with self._lock:
            self._close()
            self._open()

    def _read(self) -> Capture | None:
        raise NotImplementedError
