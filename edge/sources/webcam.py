"""A USB or laptop camera by index, through OpenCV (V4L2 on Linux)."""

from __future__ import annotations

import cv2

from edge import opencv_log
from edge.sources.base import Capture, Source, SourceError, SourceLost


def quietly_open(index: int) -> cv2.VideoCapture:
    """Open a camera with OpenCV's own logging off: where there is no camera,
    each backend it tries logs an ERROR of its own ("Camera index out of
    range"), and the one line the user needs is ours."""
    with opencv_log.quiet():  # OpenCV 4 (Bookworm's) and 5 (Trixie's) keep it apart
        return cv2.VideoCapture(index)


class WebcamSource(Source):
    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480, fps: float = 30.0):
        super().__init__()
        self.index = index
        self.size = (width, height)
        self.fps = fps
        self.description = f"webcam {index}"
        self._cap: cv2.VideoCapture | None = None

    def _open(self) -> None:
        cap = quietly_open(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"camera {self.index} did not open: check that it is connected and not in "
                "use by another program, or run with --source demo"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        # Keep the driver's queue short: we want the newest frame, not a backlog.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def _read(self) -> Capture | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceLost(f"{self.description} stopped delivering frames")
        return Capture(image)

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
