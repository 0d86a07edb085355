"""The annotated video, recorded to a file (`--record out.mkv`).

Matroska (`.mkv`) is written cluster by cluster, so a recording cut by a
power cut or SIGKILL plays up to its last few seconds; an `.mp4` keeps its
index (the moov atom) until it is closed and is unreadable without it (0
frames of ~340 after a hard kill, measured by `make pi-vm-check`): a service,
which a power cut can stop at any moment, refuses those formats in one line. With
`[output] rotate_mb` the recording starts a new file past that size, and an
existing file is moved aside at start rather than refused, so a restarted
service records on. Below `min_free_mb` of free space recording pauses, with
one line, and resumes in a new file when space returns.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from edge.frames import Result
from edge.retention import Retention
from edge.sinks.base import PeriodicSync, Sink, SinkContext, SinkError, check_writable
from edge.sinks.rotation import free_mb, rotate
from edge.sources import under_systemd

log = logging.getLogger(__name__)

FOURCC = {".mkv": "mp4v", ".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mov": "mp4v"}
# Containers whose index is written on close: nothing plays after a power cut.
INDEX_AT_END = {".mp4", ".m4v", ".mov"}
SPACE_CHECK_S = 5.0  # how often free space is looked at while recording


class VideoSink(Sink):
    needs_image = True
    name = "record"

    def __init__(
        self,
        path: str | Path,
        fps: float = 15.0,
        overwrite: bool = False,
        max_mb: float = 0.0,
        keep: int = 10,
        min_free_mb: float = 0.0,
        keep_days: float = 0.0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.retention = Retention(self.path, keep_days, keep) if keep_days else None
        self.fps = fps
        self.overwrite = overwrite
        self.max_bytes, self.keep, self.min_free_mb = int(max_mb * 1e6), keep, min_free_mb
        self.paused = False
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._space_checked = 0.0
        self._sync = PeriodicSync()  # a power cut costs seconds, not the kernel's 30

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        output = context.config.output
        if not output.record:
            return None
        return cls(
            output.record,
            context.fps,
            output.overwrite,
            output.rotate_mb,
            output.keep_files,
            output.min_free_mb,
            output.keep_days,
        )

    @property
    def description(self) -> str:
        return f"recording to {self.path}"

    def _open(self) -> None:
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise SinkError(f"cannot record to {self.path}: use one of {', '.join(sorted(FOURCC))}")
        if suffix in INDEX_AT_END and under_systemd():
            raise SinkError(
                f"cannot record to {self.path} as a service: a {suffix} file is unreadable after "
                f"a power cut (its index is written on close); record to {self.path.stem}.mkv"
            )
        if self.max_bytes and self.path.is_file() and not self.overwrite:
            rotate(self.path, self.keep)  # a restart: the last recording is kept, renamed
        check_writable(self.path, self.overwrite)
        if self.retention is not None:
            self.retention.prune()

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        if annotated is None or not self._room_to_record():
            return
        if self._writer is None:
            self._start(annotated.shape[1::-1])
        if annotated.shape[1::-1] != self._size:
            annotated = cv2.resize(annotated, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(annotated)
        self._sync(self.path)
        if self.max_bytes and self._file_size() >= self.max_bytes:
            self._finish()
            rotate(self.path, self.keep)
        if self.retention is not None:
            self.retention.check(self._new_day)

    def _start(self, size: tuple[int, int]) -> None:
        """A new file; the size is known only from the first frame."""
        self._size = size
        fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
        if not self._writer.isOpened():
            raise SinkError(f"cannot write video {self.path}: no encoder for this format")

    def _file_size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _room_to_record(self) -> bool:
        """False while free space is under the floor (checked every few seconds)."""
        if not self.min_free_mb:
            return True
        now = time.monotonic()
        if now - self._space_checked < SPACE_CHECK_S:
            return not self.paused
        self._space_checked = now
        free = free_mb(self.path)
        if not self.paused and free < self.min_free_mb:
            self.paused = True
            self._finish()
            log.warning(
                "%s paused: %.0f MB free, under min_free_mb %.0f; it resumes in a new file "
                "when space is freed",
                self.description,
                free,
                self.min_free_mb,
            )
        elif self.paused and free >= self.min_free_mb * 1.1:  # a margin: no flapping
            self.paused = False
            if self.path.exists() and self.max_bytes:
                rotate(self.path, self.keep)
            elif self.path.exists():
                self._set_aside()
            log.info("%s resumed: %.0f MB free", self.description, free)
        return not self.paused

    def _set_aside(self) -> None:
        """Without rotation, a paused recording is kept under a timestamped name."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path.rename(self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}"))

    def _new_day(self) -> None:
        """A day's recording is done: the next frame starts a new file."""
        self._finish()
        self.retention.start_new_file()

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _close(self) -> None:
        self._finish()
