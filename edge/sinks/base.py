"""The Sink base class: where results go (screen, video file, events)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np

from edge.frames import Result
from edge.lifecycle import Lifecycle

if TYPE_CHECKING:
    from edge.config import RunConfig
    from edge.pause import PauseSwitch
    from edge.sources.base import Source


class SinkError(RuntimeError):
    """A sink that cannot be opened; the message says how to fix it."""


@dataclass
class SinkContext:
    """Everything a sink may need to build itself, handed to every sink alike.

    `display`: `[output] display` with `auto` already decided. `stats`: the
    pipeline's live figures (the same snapshot as the log line).
    """

    config: RunConfig
    display: str = "none"
    fps: float = 15.0
    source: Source | None = None
    stats: Callable[[], dict] = field(default=dict)
    run: str = ""
    """This run's id: output lines carry it, so appended runs stay apart."""
    pause: PauseSwitch | None = None
    """Pauses analysis (the web page's button, MQTT's switch); None: cannot."""

    @property
    def source_description(self) -> str:
        return self.source.description if self.source is not None else ""

    def run_details(self) -> dict:
        """What a run's `start` line records beside its id and time."""
        return {
            "source": self.source_description,
            "detector": self.config.detector.name,
            "model": self.config.classifier.model_name,
        }


class Sink(Lifecycle):
    """A backend fills in `_open`, `_write`, `_close`; the lifecycle is the base's.

    `needs_image`: the sink draws the annotated frame, so the pipeline renders
    the overlay only when some sink needs it. A sink sets `stop_requested`
    when the user asks to stop (a key in the window).
    """

    needs_image = False
    name = "sink"
    stop_requested = False

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        """The (unopened) sink if the run's config asks for it, else None."""
        raise NotImplementedError

    @property
    def description(self) -> str:
        return f"{self.name} sink"

    def write(self, result: Result, annotated: np.ndarray | None) -> None:
        self._write(result, annotated)

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        raise NotImplementedError


def describe_os_error(exc: OSError, path: Path | str | None = None) -> str:
    """'PATH (No space left on device)': the file and the cause, on one line."""
    where, cause = path or exc.filename, exc.strerror or str(exc)
    return f"{where} ({cause})" if where else cause


def describe_failure(exc: Exception) -> str:
    """An output error on one line: an OSError as file and cause, else its message."""
    return describe_os_error(exc) if isinstance(exc, OSError) else str(exc)


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse to replace a file the user has unless told to (`--overwrite`)."""
    if path.exists() and not overwrite:
        raise SinkError(f"{path} exists: choose another path or pass --overwrite to replace it")
    if path.is_dir():
        raise SinkError(f"{path} is a folder: give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(
            f"cannot create the folder for {describe_os_error(exc, path)}: choose a writable path"
        ) from None


SYNC_EVERY_S = 5.0


class PeriodicSync:
    """Pushes a file's written data to the disk at most every `every` seconds.

    The kernel keeps written data in memory for up to 30 s before it writes
    it back, and a power cut loses what it kept: with this, a recording or an
    events file loses at most the last few seconds (`make pi-vm-check`'s
    powercut measures it). fsync on a descriptor of our own flushes the file
    whoever wrote it, so it works for OpenCV's VideoWriter too.
    """

    def __init__(self, every: float = SYNC_EVERY_S) -> None:
        self.every = every
        self._at = time.monotonic()

    def __call__(self, path: Path | str) -> None:
        now = time.monotonic()
        if now - self._at < self.every:
            return
        self._at = now
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass  # a vanished or failing disk: the writer itself reports it
