"""Video files and network streams (RTSP/HTTP), decoded by OpenCV's FFmpeg."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.sources.base import Capture, FrameError, Source, SourceError, SourceLost

STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
TIMEOUT_MS = 5000  # a stream that says nothing this long is lost


class VideoSource(Source):
    """A video file (every frame, in order) or a stream URL (live).

    `loop`: a file starts again from its first frame when it ends, forever
    (a kiosk's demo, a soak test); the frame index keeps counting.
    """

    MAX_BAD_FRAMES = 25

    def __init__(self, location: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.location = str(location)
        self.loop = loop
        self.loops = 0  # how many times a looping file has started again
        self.live = self.network = self.location.lower().startswith(STREAM_PREFIXES)
        self.description = f"stream {self.location}" if self.live else f"video {self.location}"
        self._cap: cv2.VideoCapture | None = None
        self._frame_count = 0
        self._position = 0
        self._bad_in_a_row = 0

    @property
    def frame_count(self) -> int:
        """How many frames the file says it has (0: a stream, or unknown)."""
        return 0 if self.live else self._frame_count

    def _open(self) -> None:
        if not self.live and not Path(self.location).is_file():
            raise SourceError(f"video file {self.location} not found: check the path")
        if self.live:
            # Bounded opens and reads: a half-open stream cannot hang the capture thread.
            cap = cv2.VideoCapture(
                self.location,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    TIMEOUT_MS,
                ],
            )
        else:
            cap = cv2.VideoCapture(self.location)
        if not cap.isOpened():
            cap.release()
            what = "stream" if self.live else "video file"
            raise SourceError(
                f"cannot open {what} {self.location}: "
                + (
                    "check the URL and that the stream is up"
                    if self.live
                    else "not a video OpenCV can decode"
                )
            )
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None
        self._frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._position = 0

    def _read(self) -> Capture | None:
        ok, image = self._cap.read()
        if ok and image is not None:
            self._position += 1
            self._bad_in_a_row = 0
            return Capture(image)
        if self.live:
            raise SourceLost(f"{self.description} stopped delivering frames")
        # A failed read before the known end is a broken frame, not the end.
        if self._position < self._frame_count - 1:
            self._position += 1
            self._bad_in_a_row += 1
            if self._bad_in_a_row <= self.MAX_BAD_FRAMES:
                raise FrameError(f"{self.description}: frame {self._position - 1} did not decode")
        if self.loop and self._position:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._position = 0
            self.loops += 1
            return self._read()
        return None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
