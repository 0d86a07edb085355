"""What flows through the pipeline: frames, faces, results, and the slot between stages."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np


@dataclass
class Frame:
    """An image with where it came from and when it was captured.

    `t_capture` is on the monotonic clock (time.monotonic), the sensor's own
    timestamp mapped onto it where the camera gives one, so end-to-end
    latency is measured from the moment light was captured.
    """

    image: np.ndarray
    index: int
    t_capture: float
    source: str = ""
    capture_ms: float = 0.0
    detect_image: np.ndarray | None = None
    """A smaller gray view to detect on (boxes are scaled back to `image`)."""
    t_file: float | None = None
    """Seconds into a file processed offline (its own timeline: index / fps),
    which runs faster or slower than the clock; None for a live source."""

    @property
    def t_scene(self) -> float:
        """When this happened in the scene, in seconds: the file's timeline
        offline, the capture time live. What "a face held for 1 s" counts in."""
        return self.t_capture if self.t_file is None else self.t_file


@dataclass
class Detection:
    """A face box (x, y, w, h) in source pixels and the detector's score."""

    box: tuple[int, int, int, int]
    score: float


@dataclass
class Face:
    """A classified, tracked face: one entry of an event's `faces` list."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    confidence: float
    probs: dict[str, float]
    track: int

    @classmethod
    def classified(
        cls,
        box: tuple[int, int, int, int],
        score: float,
        labels: Sequence[str],
        probs: Sequence[float],
        track: int = 0,
    ) -> Face:
        """A face with its label and confidence taken from `probs` (one per label).

        `track` 0 means not tracked yet: the tracker (or photo numbering) assigns ids.
        """
        best = int(np.argmax(probs))
        return cls(
            box=box,
            score=score,
            label=labels[best],
            confidence=float(probs[best]),
            probs={label: float(p) for label, p in zip(labels, probs, strict=True)},
            track=track,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "box": [int(v) for v in self.box],
            "score": round(float(self.score), 4),
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probs": {k: round(float(v), 4) for k, v in self.probs.items()},
            "track": int(self.track),
        }


@dataclass
class Result:
    """A processed frame: the faces found in it and the time each stage took."""

    frame: Frame
    faces: list[Face]
    stage_ms: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    hidden: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Where a face may be but none is labelled (a track missed on this frame,
    a far find not yet confirmed, a detection below the labelling score, a
    face in a mask): obscured with the faces when privacy is on, never drawn."""
    concealed: bool = False
    """The whole picture is obscured under privacy: a stream's first frames,
    before the detector has searched all of the view once."""

    def to_event(self) -> dict[str, Any]:
        return {
            "type": "frame",
            "frame": self.frame.index,
            "t": round(self.frame.t_capture, 6),
            "latency_ms": round(self.latency_ms, 3),
            "faces": [face.to_json() for face in self.faces],
        }


T = TypeVar("T")


class Closed(Exception):
    """The slot was closed: the stage upstream has finished."""


class LatestSlot(Generic[T]):
    """A one-item hand-over between two threads.

    With `drop=True` (live sources) a new item replaces one not yet taken, and
    the replaced item is counted: the consumer always gets the newest frame
    and no backlog can build up. With `drop=False` (files, offline) `put`
    waits until the consumer has taken the previous item: back-pressure, so
    every frame is processed.
    """

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.dropped = 0
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Hand over `item`; False if it timed out waiting (drop=False only)."""
        with self._cond:
            if self._closed:
                raise Closed
            if self._full:
                if self.drop:
                    self.dropped += 1
                elif not self._cond.wait_for(lambda: not self._full or self._closed, timeout):
                    return False
                elif self._closed:
                    raise Closed
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The item, or None on timeout; raises Closed once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                raise Closed
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; a waiting `get` drains what is left, then raises Closed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
