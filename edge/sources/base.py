"""The Source base class: where frames come from, opened once and closed once."""

from __future__ import annotations

import logging
from typing import NamedTuple, NoReturn, Self

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


log = logging.getLogger("edge.sources")

# What a backend raises on purpose; anything else from a live source is a fault.
_EXPECTED = (SourceError, SourceLost, SourceFailed, FrameError)


class Source(Lifecycle):
    """A backend fills in `_open`, `_read`, `_close`; the lifecycle is the base's.

    `live` sources (cameras, streams) run at their own pace, so the pipeline
    keeps only the newest frame; files and images are processed frame by frame.
    A live source's unexpected backend error (an OpenCV or driver API that
    changed under us) is turned into the error the pipeline retries on
    (`_fault`), so it is waited out like a missing camera instead of ending
    the process.
    """

    live = False
    network = False  # reached over a network: slower to come back, so waited for longer
    fps: float | None = None
    description = "source"

    def open(self) -> Self:
        try:
            return super().open()
        except Exception as exc:
            self._fault(SourceError, "opening", exc)

    def read(self) -> Capture | None:
        """The next frame, or None when a finite source has ended. A live
        source's unexpected error while reading is a loss: it is reopened."""
        self._check_open()
        try:
            return self._read()
        except Exception as exc:
            self._fault(SourceLost, "reading", exc)

    def reopen(self) -> None:
        """Close and open again, after `SourceLost`; raises SourceError if it fails."""
        with self._lock:
            try:
                self._close()
                self._open()
            except Exception as exc:
                self._fault(SourceError, "reopening", exc)

    def _fault(self, kind: type[RuntimeError], doing: str, exc: Exception) -> NoReturn:
        """Raise `exc` again if meant (or the source is a file), else `kind`
        in one line; the traceback goes to the debug log for a bug report."""
        if isinstance(exc, _EXPECTED) or not self.live:
            raise exc
        log.debug("%s: %s failed", self.description, doing, exc_info=exc)
        raise kind(
            f"{self.description}: {doing} failed in its backend "
            f"({type(exc).__name__}: {exc}); retrying (run with --log-level debug for details)"
        ) from exc

    def _read(self) -> Capture | None:
        raise NotImplementedError
