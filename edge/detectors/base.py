"""The Detector base class: finds face boxes in a BGR frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np

from edge.frames import Detection
from edge.lifecycle import Lifecycle
from edge.tracking import iou as box_overlap

if TYPE_CHECKING:
    from edge.config import DetectorConfig


class DetectorError(RuntimeError):
    """A detector that cannot be created; the message says how to fix it."""


class Detector(Lifecycle):
    """A backend fills in `_open`, `_detect`, `_close`; the lifecycle is the base's."""

    name = "detector"

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Self:
        """The (unopened) detector a run's `[detector]` section describes."""
        raise NotImplementedError

    @property
    def description(self) -> str:
        return f"{self.name} detector"

    def detect(self, image: np.ndarray) -> list[Detection]:
        self._check_open()
        return self._detect(image)

    def _detect(self, image: np.ndarray) -> list[Detection]:
        raise NotImplementedError

    def hide_unsure(self, score: float) -> None:
        """Privacy: from now on, also find what scores above `score` but is
        not labelled (`unsure`). A detector without scores: nothing more."""

    def unsure(self) -> list[tuple[int, int, int, int]]:
        """Boxes the last `detect` found but does not call faces: far finds
        waiting for a second look, scores between `hide_unsure`'s and the
        labelling threshold. Privacy obscures them (edge/privacy.py)."""
        return []

    @property
    def searched_everywhere(self) -> bool:
        """Whether the whole view has been searched since the stream began (a
        detector that searches it in parts takes several frames)."""
        return True

    def forget(self, look_everywhere: bool = True) -> None:
        """Drop what was learned from earlier frames (a detector that follows
        faces across frames): the next image is unrelated to the last, and with
        `look_everywhere` is searched in full at once. Stateless: nothing."""


def clip_box(x: float, y: float, w: float, h: float, width: int, height: int):
    """(x, y, w, h) as ints, clipped to the frame; None if nothing is left."""
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


def tile_windows(width: int, height: int, n: int, overlap: float = 0.25) -> list[tuple]:
    """n x n windows (x, y, w, h) covering the frame, neighbours overlapping by
    `overlap` of a window, so a face on a seam is whole in one of them."""
    tile_w = round(width / (n - (n - 1) * overlap))
    tile_h = round(height / (n - (n - 1) * overlap))
    xs = np.linspace(0, width - tile_w, n).round().astype(int)
    ys = np.linspace(0, height - tile_h, n).round().astype(int)
    return [(int(x), int(y), tile_w, tile_h) for y in ys for x in xs]


def same_face(a: tuple, b: tuple, iou: float = 0.3, inside: float = 0.6) -> bool:
    """Whether two boxes are one face: they overlap by `iou`, or most of the
    smaller lies inside the larger (a tile's seam cuts a close face in part)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return box_overlap(a, b) >= iou or (smaller > 0 and ix * iy / smaller >= inside)


def merge(detections: list[Detection]) -> list[Detection]:
    """One detection per face, the first of those that are the same face (found
    in the whole frame and in a tile, or in two tiles): callers put the
    whole-frame pass first, since a tile may see only part of a close face."""
    kept: list[Detection] = []
    for found in detections:
        if not any(same_face(found.box, other.box) for other in kept):
            kept.append(found)
    return kept


def detect_on(detector: Detector, image: np.ndarray, detect_image: np.ndarray | None):
    """Detections in `image` coordinates, found on `detect_image` when given.

    The Pi camera's low-resolution stream is detected on (less to scale and
    convert), and its boxes are scaled back to the main image, where faces are
    cropped at full resolution.
    """
    if detect_image is None:
        return detector.detect(image)
    scaled = []
    for found in detector.detect(detect_image):
        box = _scaled(found.box, image, detect_image)
        if box is not None:
            scaled.append(Detection(box, found.score))
    return scaled


def unsure_on(detector: Detector, image: np.ndarray, detect_image: np.ndarray | None):
    """The detector's `unsure` boxes of its last detect, in `image` coordinates."""
    if detect_image is None:
        return detector.unsure()
    scaled = (_scaled(box, image, detect_image) for box in detector.unsure())
    return [box for box in scaled if box is not None]


def _scaled(box: tuple, image: np.ndarray, detect_image: np.ndarray):
    height, width = image.shape[:2]
    sx, sy = width / detect_image.shape[1], height / detect_image.shape[0]
    x, y, w, h = box
    return clip_box(x * sx, y * sy, w * sx, h * sy, width, height)
