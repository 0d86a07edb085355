"""An OpenCV window: the screen under a desktop session (HDMI on a Pi with a desktop).

`q` or Esc in the window asks the pipeline to stop, as does closing it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from edge.frames import Result
from edge.sinks.base import Sink, SinkContext, SinkError

WINDOW_TITLE = "emotion-edge"


def display_available() -> bool:
    """True where a window can be shown: an X11 or Wayland session (or macOS/Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink(Sink):
    needs_image = True
    name = "window"

    def __init__(self, fullscreen: bool = False, title: str = WINDOW_TITLE) -> None:
        super().__init__()
        self.fullscreen = fullscreen
        self.title = title
        self._shown = False

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        output = context.config.output
        return cls(bool(output.fullscreen)) if context.display == "window" else None

    def _open(self) -> None:
        # opencv-python's bundled Qt ships no fonts; point it at the system's
        # instead of a warning per window.
        for fonts in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype"):
            if Path(fonts).is_dir():
                os.environ.setdefault("QT_QPA_FONTDIR", fonts)
                break
        if not display_available():
            raise SinkError("no display for a window (DISPLAY is not set): use --display none")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise SinkError(f"cannot open a window ({exc.err}): use --display none") from None
        if self.fullscreen:
            cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        cv2.imshow(self.title, annotated)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.stop_requested = True
        elif self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.stop_requested = True  # the user closed the window
        self._shown = True

    def _close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
