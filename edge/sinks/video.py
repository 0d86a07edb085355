"""The annotated video, recorded to a file (`--record out.mp4`)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import cv2
import numpy as np

from edge.frames import Result
from edge.sinks.base import Sink, SinkContext, SinkError, check_writable

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


class VideoSink(Sink):
    needs_image = True
    name = "record"

    def __init__(self, path: str | Path, fps: float = 15.0, overwrite: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.fps = fps
        self.overwrite = overwrite
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        output = context.config.output
        return cls(output.record, context.fps, output.overwrite) if output.record else None

    def _open(self) -> None:
        if self.path.suffix.lower() not in FOURCC:
            raise SinkError(f"cannot record to {self.path}: use one of {', '.join(sorted(FOURCC))}")
        check_writable(self.path, self.overwrite)

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        if self._writer is None:
            # The size is known only from the first frame.
            height, width = annotated.shape[:2]
            self._size = (width, height)
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video {self.path}: no encoder for this format")
        if annotated.shape[1::-1] != self._size:
            annotated = cv2.resize(annotated, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(annotated)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
